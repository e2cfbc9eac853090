"""What the control plane's API and dashboard share: the inventory, the chains, the workspaces' signers.

One `ControlPlane` per server process. Chains are connected lazily by chain id from the configured RPC
URLs. On-chain truth is never stored in the inventory: the scanned logs, block times and learned provider
limits are a cache in the same database (`FleetScanCache`), and an allowlist view reuses the last read of
the app while the chain's head has not moved (`HeadTracked`). A change for a workspace is signed only
with that workspace's own signer (see `signer_for`); there is no shared key.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.logcache import ScanCache
from warden.chain.signer import Signer
from warden.errors import BadInput, OperationFailed
from warden.fleet.allowlist_view import AllowlistView, chain_allowlist, device_allowlist_view
from warden.fleet.devices import DeviceAllowlist, history_json
from warden.fleet.inventory import Inventory
from warden.fleet.scan_store import FleetScanCache
from warden.fleet.store import AppView, Fleet, IdentityUpdate, WorkspaceRef
from warden.fleet.workspace_signers import SecretKey, unseal_signer
from warden.identity.device import device_id
from warden.identity.quote import quote_bytes
from warden.kms.attestation_policy import AttestationPolicy
from warden.watch.store import AlertStore
from warden.web.head_memo import HeadTracked


@dataclass
class ControlPlane:
    fleet: Fleet
    rpc_urls: list[str]
    attestation: AttestationPolicy | None = None  # None: node quotes are refused
    # opens the workspaces' sealed signers; None: nobody's key is opened, every change is a Safe batch / calldata
    secret_key: SecretKey | None = None
    cache_dir: Path | None = None  # files other parts may keep; the chain scan cache is in the database
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _chains: dict[int, Chain] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _signers: dict[int, tuple[bytes, Signer]] = field(default_factory=dict, repr=False)
    _scan_cache: FleetScanCache | None = field(default=None, repr=False)
    _alert_store: AlertStore | None = field(default=None, repr=False)
    # what the chain said of each app (allowlist, audit trail), reused while the head has not moved
    _allowlists: HeadTracked[DeviceAllowlist] = field(default_factory=HeadTracked, repr=False)
    _views: HeadTracked[AllowlistView] = field(default_factory=HeadTracked, repr=False)
    _named_histories: HeadTracked[list[dict[str, Any]]] = field(default_factory=HeadTracked, repr=False)
    _histories: HeadTracked[list[dict[str, Any]]] = field(default_factory=HeadTracked, repr=False)

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

    def log_cache(self) -> ScanCache:
        """Scanned logs, block times and provider limits, kept in the control plane's database."""
        with self._lock:
            if self._scan_cache is None:
                self._scan_cache = FleetScanCache(self.fleet)
            return self._scan_cache

    def alert_store(self) -> AlertStore:
        """Alerts, webhooks, deliveries and the transactions warden sent, in the control plane's database."""
        with self._lock:
            if self._alert_store is None:
                self._alert_store = AlertStore(self.fleet)
            return self._alert_store

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
        """The merged allowlist: the chain's (as of the head, reused while it has not moved), the app's CVMs
        and the workspace's nodes; the merge is reused while neither the head nor the fleet revision moved."""
        app = self.fleet.app(workspace, app_key)
        auth, cache = self.app_auth(app), self.log_cache()

        def merged() -> AllowlistView:
            onchain = self._allowlists.read(
                (app.chain_id, app.address), auth.chain, lambda: chain_allowlist(auth, cache)
            )
            cvms = self.fleet.placements(workspace, app.address)
            return device_allowlist_view(auth, self.inventory(workspace), cvms, cache, onchain)

        key = (workspace.id, app.chain_id, app.address)
        return self._views.read(key, auth.chain, merged, version=self.fleet.revision())

    def inventory(self, workspace: WorkspaceRef) -> Inventory:
        """The nodes this workspace may deploy to, as the allowlist commands resolve node names."""
        return Inventory(n.inventory_node() for n in self.fleet.nodes(workspace))

    def app_history(self, workspace: WorkspaceRef, app_key: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The app's device audit trail (DeviceAdded / DeviceRemoved / AllowAnyDeviceSet), newest last, nodes
        named from the workspace's inventory (reused while neither the head nor the fleet revision moved);
        only the last `limit` events when given."""
        app = self.fleet.app(workspace, app_key)
        auth, cache = self.app_auth(app), self.log_cache()

        def named() -> list[dict[str, Any]]:
            events = self._histories.read(
                (app.chain_id, app.address), auth.chain, lambda: history_json(auth, Inventory(), cache)
            )
            return named_events(events, self.inventory(workspace))

        key = (workspace.id, app.chain_id, app.address)
        events = self._named_histories.read(key, auth.chain, named, version=self.fleet.revision())
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return events

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


def named_events(events: list[dict[str, Any]], inventory: Inventory) -> list[dict[str, Any]]:
    """Audit-trail rows (as `history_json` writes them) with the node, or former node, each device is now."""
    former = inventory.former_names()
    named = []
    for event in events:
        device = bytes.fromhex(event["device_id"][2:]) if event["device_id"] else None
        node = inventory.name_for_device(device) if device else None
        named.append(event | {"node": node, "former_node": former.get(device) if device else None})
    return named
