"""`AppAuth`: a DstackApp contract (the per-app allowlist of compose hashes and devices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.chain.artifacts import load_artifact
from warden.chain.connection import Chain, ContractReverted, chain_name
from warden.chain.contract import Contract
from warden.chain.inputs import parse_address
from warden.chain.tx import TxRequest
from warden.errors import BadInput

IAPP_AUTH_ID = bytes.fromhex("1e079198")
IAPP_AUTH_BASIC_MANAGEMENT_ID = bytes.fromhex("8fd37527")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class BootCheck:
    """The fields `isAppAllowed` / `isKmsAllowed` take (dstack's AppBootInfo)."""

    app_id: str
    compose_hash: bytes
    device_id: bytes
    instance_id: str = ZERO_ADDRESS
    mr_aggregated: bytes = bytes(32)
    mr_system: bytes = bytes(32)
    os_image_hash: bytes = bytes(32)
    tcb_status: str = "UpToDate"
    advisory_ids: tuple[str, ...] = ()

    def as_abi(self) -> dict[str, Any]:
        return {
            "appId": self.app_id,
            "composeHash": self.compose_hash,
            "instanceId": self.instance_id,
            "deviceId": self.device_id,
            "mrAggregated": self.mr_aggregated,
            "mrSystem": self.mr_system,
            "osImageHash": self.os_image_hash,
            "tcbStatus": self.tcb_status,
            "advisoryIds": list(self.advisory_ids),
        }


@dataclass(frozen=True)
class AppInfo:
    app: str
    chain_id: int
    owner: str
    pending_owner: str | None
    allow_any_device: bool
    require_tcb_up_to_date: bool
    version: int
    implementation: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "chain_id": self.chain_id,
            "owner": self.owner,
            "pending_owner": self.pending_owner,
            "allow_any_device": self.allow_any_device,
            "require_tcb_up_to_date": self.require_tcb_up_to_date,
            "version": self.version,
            "implementation": self.implementation,
        }


class AppAuth(Contract):
    """Reads return values; writes return TxRequests for `warden.chain.tx` to send."""

    role = "app"

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, address, load_artifact("DstackApp").abi)

    @classmethod
    def open(cls, chain: Chain, address: str) -> AppAuth:
        """Bind to an address after checking it holds a DstackApp (ERC-165), with a clear error if not."""
        address = parse_address(address, "app address")
        if not chain.get_code(address):
            raise BadInput(f"no contract at {address} on chain {chain_name(chain.chain_id)}")
        app = cls(chain, address)
        if not (app.supports_interface(IAPP_AUTH_ID) and app.supports_interface(IAPP_AUTH_BASIC_MANAGEMENT_ID)):
            raise BadInput(
                f"{address} is not a DstackApp: it does not report the IAppAuth (0x1e079198) and "
                "IAppAuthBasicManagement (0x8fd37527) interfaces"
            )
        return app

    def info(self) -> AppInfo:
        """Everything `warden app info` shows, read in one batch request."""
        owner, pending, allow_any, tcb, version = self.call_many(
            [
                ("owner", ()),
                ("pendingOwner", ()),
                ("allowAnyDevice", ()),
                ("requireTcbUpToDate", ()),
                ("version", ()),
            ]
        )
        for value in (owner, allow_any, version):
            if isinstance(value, Exception):
                raise value
        return AppInfo(
            app=self.address,
            chain_id=self.chain.chain_id,
            owner=owner,
            pending_owner=None if isinstance(pending, Exception) or pending == ZERO_ADDRESS else pending,
            allow_any_device=bool(allow_any),
            # an app deployed before the TCB flag existed has no getter: it behaves as "false"
            require_tcb_up_to_date=False if isinstance(tcb, ContractReverted) else bool(tcb),
            version=int(version),
            implementation=self.implementation(),
        )

    def owner(self) -> str:
        return str(self.call("owner"))

    def pending_owner(self) -> str | None:
        pending = str(self.call("pendingOwner"))
        return None if pending == ZERO_ADDRESS else pending

    def allow_any_device(self) -> bool:
        return bool(self.call("allowAnyDevice"))

    def is_device_allowed(self, device_id: bytes) -> bool:
        return bool(self.call("allowedDeviceIds", device_id))

    def is_compose_hash_allowed(self, compose_hash: bytes) -> bool:
        return bool(self.call("allowedComposeHashes", compose_hash))

    def is_app_allowed(self, boot: BootCheck) -> tuple[bool, str]:
        allowed, reason = self.call("isAppAllowed", boot.as_abi())
        return bool(allowed), str(reason)

    # -- writes ----------------------------------------------------------------------------------
    def add_device(self, device_id: bytes) -> TxRequest:
        return self.request("addDevice", device_id, label=f"addDevice 0x{device_id.hex()}")

    def remove_device(self, device_id: bytes) -> TxRequest:
        return self.request("removeDevice", device_id, label=f"removeDevice 0x{device_id.hex()}")

    def add_compose_hash(self, compose_hash: bytes) -> TxRequest:
        return self.request("addComposeHash", compose_hash, label=f"addComposeHash 0x{compose_hash.hex()}")

    def remove_compose_hash(self, compose_hash: bytes) -> TxRequest:
        return self.request("removeComposeHash", compose_hash, label=f"removeComposeHash 0x{compose_hash.hex()}")

    def set_allow_any_device(self, enabled: bool) -> TxRequest:
        return self.request("setAllowAnyDevice", enabled, label=f"setAllowAnyDevice {str(enabled).lower()}")

    def set_require_tcb_up_to_date(self, enabled: bool) -> TxRequest:
        return self.request("setRequireTcbUpToDate", enabled, label=f"setRequireTcbUpToDate {str(enabled).lower()}")

    def disable_upgrades(self) -> TxRequest:
        return self.request("disableUpgrades")

    def transfer_ownership(self, new_owner: str) -> TxRequest:
        return self.request("transferOwnership", new_owner, label=f"transferOwnership {new_owner}")

    def accept_ownership(self) -> TxRequest:
        return self.request("acceptOwnership")
