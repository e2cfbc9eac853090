"""`AppAuth`: a DstackApp contract (the per-app allowlist of compose hashes and devices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.chain.connection import ContractReverted
from warden.chain.contract import DstackContract
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


class AppAuth(DstackContract):
    """Reads return values; writes return TxRequests for `warden.chain.tx` to send."""

    role = "app"
    artifact = "DstackApp"

    def check_kind(self) -> None:
        """ERC-165: IAppAuth and IAppAuthBasicManagement."""
        if not (self.supports_interface(IAPP_AUTH_ID) and self.supports_interface(IAPP_AUTH_BASIC_MANAGEMENT_ID)):
            raise BadInput(
                f"{self.address} is not a DstackApp: it does not report the IAppAuth (0x1e079198) and "
                "IAppAuthBasicManagement (0x8fd37527) interfaces"
            )

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

    def pending_owner(self) -> str | None:
        pending = str(self.call("pendingOwner"))
        return None if pending == ZERO_ADDRESS else pending

    def allow_any_device(self) -> bool:
        return bool(self.call("allowAnyDevice"))

    def is_device_allowed(self, device_id: bytes) -> bool:
        return bool(self.call("allowedDeviceIds", device_id))

    def is_compose_hash_allowed(self, compose_hash: bytes) -> bool:
        return bool(self.call("allowedComposeHashes", compose_hash))

    # -- writes ----------------------------------------------------------------------------------
    def add_device(self, device_id: bytes) -> TxRequest:
        return self.request("addDevice", device_id)

    def remove_device(self, device_id: bytes) -> TxRequest:
        return self.request("removeDevice", device_id)

    def add_compose_hash(self, compose_hash: bytes) -> TxRequest:
        return self.request("addComposeHash", compose_hash)

    def remove_compose_hash(self, compose_hash: bytes) -> TxRequest:
        return self.request("removeComposeHash", compose_hash)

    def set_allow_any_device(self, enabled: bool) -> TxRequest:
        return self.request("setAllowAnyDevice", enabled)

    def set_require_tcb_up_to_date(self, enabled: bool) -> TxRequest:
        return self.request("setRequireTcbUpToDate", enabled)

    def disable_upgrades(self) -> TxRequest:
        return self.request("disableUpgrades")

    def transfer_ownership(self, new_owner: str) -> TxRequest:
        return self.request("transferOwnership", new_owner)

    def accept_ownership(self) -> TxRequest:
        return self.request("acceptOwnership")
