"""`KmsRegistry`: the DstackKms contract (app registry + factory, OS images, KMS measurements and devices)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from warden.chain.app import IAPP_AUTH_ID, ZERO_ADDRESS, BootCheck
from warden.chain.connection import Chain
from warden.chain.contract import DstackContract
from warden.chain.history import read_history
from warden.chain.inputs import hex0x, parse_address
from warden.chain.logcache import ScanCache
from warden.chain.rpc import RpcClient
from warden.chain.tx import TxRequest
from warden.errors import BadInput, OperationFailed


@dataclass(frozen=True)
class KmsInfo:
    kms: str
    chain_id: int
    owner: str
    app_implementation: str | None
    gateway_app_id: str
    k256_pubkey: bytes
    ca_pubkey: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "kms": self.kms,
            "chain_id": self.chain_id,
            "owner": self.owner,
            "app_implementation": self.app_implementation,
            "gateway_app_id": self.gateway_app_id,
            "k256_pubkey": hex0x(self.k256_pubkey),
            "ca_pubkey": hex0x(self.ca_pubkey),
        }


@dataclass(frozen=True)
class OsImage:
    os_image_hash: bytes
    allowed: bool
    block: int
    tx: str


class KmsRegistry(DstackContract):
    role = "KMS"
    artifact = "DstackKms"

    def check_kind(self) -> None:
        """IAppAuth (ERC-165) plus the registry getters."""
        if not self.supports_interface(IAPP_AUTH_ID):
            raise BadInput(f"{self.address} is not a DstackKms: it does not report the IAppAuth interface")
        try:
            self.call("appImplementation")
        except OperationFailed:
            raise BadInput(f"{self.address} is not a DstackKms: it has no appImplementation()") from None

    def info(self) -> KmsInfo:
        owner, implementation, gateway, kms_info = self.call_many(
            [("owner", ()), ("appImplementation", ()), ("gatewayAppId", ()), ("kmsInfo", ())]
        )
        for value in (owner, implementation, gateway, kms_info):
            if isinstance(value, Exception):
                raise value
        return KmsInfo(
            kms=self.address,
            chain_id=self.chain.chain_id,
            owner=owner,
            app_implementation=None if implementation == ZERO_ADDRESS else implementation,
            gateway_app_id=str(gateway),
            k256_pubkey=bytes(kms_info[0]),
            ca_pubkey=bytes(kms_info[1]),
        )

    def is_os_image_allowed(self, os_image_hash: bytes) -> bool:
        return bool(self.call("allowedOsImages", os_image_hash))

    def is_app_registered(self, app: str) -> bool:
        return bool(self.call("registeredApps", app))

    def is_kms_allowed(self, boot: BootCheck) -> tuple[bool, str]:
        allowed, reason = self.call("isKmsAllowed", boot.as_abi())
        return bool(allowed), str(reason)

    def os_images(self, cache: ScanCache | None = None) -> list[OsImage]:
        """Every OS image hash ever added, from the contract's events, confirmed by allowedOsImages."""
        history = read_history(self, ["OsImageHashAdded", "OsImageHashRemoved"], cache=cache)
        latest: dict[bytes, tuple[int, str]] = {}
        for event in history.events:
            latest[bytes(event.args["osImageHash"])] = (event.block_number, event.tx_hash)
        hashes = list(latest)
        allowed = self.call_many([("allowedOsImages", (h,)) for h in hashes], block=history.head)
        images = []
        for h, ok in zip(hashes, allowed, strict=True):
            if isinstance(ok, Exception):
                raise ok
            images.append(OsImage(h, bool(ok), *latest[h]))
        return images

    # -- writes ----------------------------------------------------------------------------------
    def add_os_image(self, os_image_hash: bytes) -> TxRequest:
        return self.request("addOsImageHash", os_image_hash)

    def remove_os_image(self, os_image_hash: bytes) -> TxRequest:
        return self.request("removeOsImageHash", os_image_hash)

    def deploy_app(
        self,
        owner: str,
        *,
        disable_upgrades: bool = False,
        require_tcb_up_to_date: bool = False,
        allow_any_device: bool = False,
        device_id: bytes = bytes(32),
        compose_hash: bytes = bytes(32),
    ) -> TxRequest:
        """The 6-argument factory call; the new app address is in the receipt (see `app_from_receipt`)."""
        return self.request(
            "deployAndRegisterApp(address,bool,bool,bool,bytes32,bytes32)",
            owner,
            disable_upgrades,
            require_tcb_up_to_date,
            allow_any_device,
            device_id,
            compose_hash,
            label="deployAndRegisterApp",
        )

    def app_from_receipt(self, receipt: dict[str, Any]) -> str:
        for log in receipt.get("logs", []):
            decoded = self.abi.decode_log(log)
            if decoded and decoded.event == "AppDeployedViaFactory" and decoded.address == self.address:
                return str(decoded.args["appId"])
        raise OperationFailed(f"transaction {receipt.get('transactionHash')} has no AppDeployedViaFactory event")


class LazyKmsRegistry:
    """A DstackKms to bind once its chain answers, so a service can start (and deny) while the RPC is down.

    The chain id is asked (and checked against `chain_id` when given) and the contract is checked to be a
    DstackKms on the first `get()` that reaches the chain; later calls return the same registry. A failed
    open is not remembered: the next `get()` tries again.
    """

    def __init__(self, rpc: RpcClient, address: str, *, chain_id: int | None = None) -> None:
        self.rpc = rpc
        self.address = parse_address(address, "KMS address")
        self.expected_chain_id = chain_id
        self._registry: KmsRegistry | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> KmsRegistry | None:
        """The registry when the chain has answered once, else None (nothing is asked)."""
        return self._registry

    @property
    def chain_id(self) -> int | None:
        """The chain's id once known, else the one the user gave (None when neither)."""
        return self._registry.chain.chain_id if self._registry else self.expected_chain_id

    def get(self) -> KmsRegistry:
        """The registry, opening it now if needed: RpcUnavailable while the chain does not answer, BadInput on
        a wrong chain id or an address that holds no DstackKms."""
        registry = self._registry
        if registry is not None:
            return registry
        with self._lock:  # one opening at a time: concurrent requests wait for it rather than repeat it
            if self._registry is None:
                self._registry = KmsRegistry.open(Chain.checked(self.rpc, self.expected_chain_id), self.address)
            return self._registry

    def close(self) -> None:
        self.rpc.close()
