"""What the control plane's API and dashboard share: the inventory, the chains, the workspaces' signers.

One `ControlPlane` per server process. Chains are connected lazily by chain id from the configured RPC
URLs; every allowlist read goes to the chain (the inventory never caches on-chain truth). A change for a
workspace is signed only with that workspace's own signer (see `signer_for`); there is no shared key.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.logcache import LogCache
from warden.chain.signer import Signer
from warden.errors import BadInput, OperationFailed
from warden.fleet.allowlist_view import AllowlistView, device_allowlist_view
from warden.fleet.devices import history_json
from warden.fleet.inventory import Inventory
from warden.fleet.store import AppView, Fleet, IdentityUpdate, WorkspaceRef
from warden.fleet.workspace_signers import SecretKey, unseal_signer
from warden.identity.device import device_id
from warden.identity.quote import quote_bytes
from warden.kms.attestation_policy import AttestationPolicy


@dataclass
class ControlPlane:
    fleet: Fleet
    rpc_urls: list[str]
    attestation: AttestationPolicy | None = None  # None: node quotes are refused
    # opens the workspaces' sealed signers; None: nobody's key is opened, every change is a Safe batch / calldata
    secret_key: SecretKey | None = None
    cache_dir: Path | None = None
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _chains: dict[int, Chain] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _signers: dict[int, tuple[bytes, Signer]] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        for chain in self._chains.values():
            chain.close()
        self._chains.clear()
        self.fleet.close()

    def chain(self, chain_id: int) -> Chain:
        """A connection to chain `chain_id`, from the first configured RPC URL that serves it."""
        with self._lock:
            if chain_id in self._chains:
                return self._chains[chain_id]
            for url in self.rpc_urls:
                try:
                    chain = Chain.connect(url)
                except OperationFailed:
                    continue
                if chain.chain_id in self._chains:
                    chain.close()
                    continue
                self._chains[chain.chain_id] = chain
                if chain.chain_id == chain_id:
                    return chain
        raise OperationFailed(f"no RPC URL configured for chain {chain_id} (pass --rpc-url)")

    def signer_for(self, workspace: WorkspaceRef) -> Signer | None:
        """The key this workspace's changes are signed with, or None when it has none (or the control plane
        has no secret key): then its changes are handed back as a Safe batch / calldata for the owner."""
        stored = self.fleet.stored_signer(workspace)
        if stored is None or self.secret_key is None:
            return None
        _address, sealed = stored
        with self._lock:
            cached = self._signers.get(workspace.id)
            if cached is not None and cached[0] == sealed:
                return cached[1]
            signer = unseal_signer(self.secret_key, workspace.id, sealed, f"workspace {workspace.name}")
            self._signers[workspace.id] = (sealed, signer)
            return signer

    def signer_address(self, workspace: WorkspaceRef) -> str | None:
        """The address `signer_for` would sign with (without opening the key), or None."""
        stored = self.fleet.stored_signer(workspace)
        return stored[0] if stored is not None and self.secret_key is not None else None

    def log_cache(self) -> LogCache | None:
        return LogCache(self.cache_dir / "logs.sqlite") if self.cache_dir else None

    def app_auth(self, app: AppView) -> AppAuth:
        return AppAuth(self.chain(app.chain_id), app.address)

    def allows(self, app: AppView, device: bytes) -> bool:
        """Would the app's contract let a CVM on this device boot (allowAnyDevice or listed)?"""
        contract = self.app_auth(app)
        any_device, listed = contract.call_many([("allowAnyDevice", ()), ("allowedDeviceIds", (device,))])
        for value in (any_device, listed):
            if isinstance(value, Exception):
                raise value
        return bool(any_device) or bool(listed)

    def device_allowlist(self, workspace: WorkspaceRef, app_key: str) -> AllowlistView:
        app = self.fleet.app(workspace, app_key)
        return device_allowlist_view(
            self.app_auth(app), self.inventory(workspace), self.fleet.cvms(workspace, app.address), self.log_cache()
        )

    def inventory(self, workspace: WorkspaceRef) -> Inventory:
        """The nodes this workspace may deploy to, as the allowlist commands resolve node names."""
        return Inventory(n.inventory_node() for n in self.fleet.nodes(workspace))

    def app_history(self, workspace: WorkspaceRef, app_key: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The app's device audit trail (DeviceAdded / DeviceRemoved / AllowAnyDeviceSet), newest last;
        only the last `limit` events when given."""
        app = self.fleet.app(workspace, app_key)
        return history_json(self.app_auth(app), self.inventory(workspace), self.log_cache(), limit)

    def record_quote(self, workspace: WorkspaceRef, node: str, quote: bytes | str) -> IdentityUpdate:
        """A node's quote: verify it, record the node's device id (history on change), flag CVMs it strands."""
        if self.attestation is None:
            raise OperationFailed("this control plane verifies no quotes (start it with --root-ca/--collateral)")
        self.fleet.node(workspace, node)  # 404 unless the workspace may deploy to the node
        raw = quote_bytes(quote.encode() if isinstance(quote, str) else quote)
        verified = self.attestation.verify(raw)
        if not verified.ppid:
            raise BadInput("the quote carries no PPID")
        device = device_id(verified.ppid, verified.quote.user_data, self.attestation.device_formula)
        return self.fleet.record_identity(
            node, verified.ppid, device, tcb_status=verified.tcb_status, allows=self.allows
        )
