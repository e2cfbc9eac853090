"""A contract bound to a chain and an address: calls (one or many in a single request) and write requests."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

from eth_utils import to_checksum_address

from warden.chain.abi import ContractAbi, decode_revert
from warden.chain.artifacts import load_artifact
from warden.chain.connection import Chain, ContractReverted, as_revert, chain_name
from warden.chain.inputs import parse_address
from warden.chain.multicall import Reverted, read_views
from warden.chain.rpc import RpcError
from warden.chain.tx import TxRequest
from warden.errors import BadInput

if TYPE_CHECKING:
    from warden.chain.app import BootCheck

ERC1967_IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
IERC165_ID = bytes.fromhex("01ffc9a7")


def contract_at(chain: Chain, address: str, what: str) -> str:
    """`address` (the `what` of messages) checked and checksummed, once the chain holds a contract there."""
    checked = parse_address(address, what)
    if not chain.get_code(checked):
        raise BadInput(f"no contract at {checked} on chain {chain_name(chain.chain_id)}")
    return checked


class Contract:
    role = "contract"  # how messages name it: app, KMS

    def __init__(self, chain: Chain, address: str, abi: ContractAbi) -> None:
        self.chain = chain
        self.address = address
        self.abi = abi

    def call(self, fn: str, *args: Any, block: int | str = "latest") -> Any:
        data = self.abi.encode_call(fn, *args)
        return self.abi.decode_output(fn, self.chain.call(self.address, data, block=block, abi=self.abi), len(args))

    def call_many(
        self, calls: Sequence[tuple[str, Sequence[Any]]], block: int | str = "latest", *, aggregate: bool = True
    ) -> list[Any]:
        """Several view calls in as few round trips as the provider allows (Multicall3 where deployed, else a
        JSON-RPC batch); a reverted call yields its ContractReverted. `aggregate=False` asks the contract
        itself, never through Multicall3 (what a key-release decision is read with)."""
        views = [(self.address, self.abi.encode_call(fn, *args)) for fn, args in calls]
        results: list[Any] = []
        for (fn, args), raw in zip(calls, read_views(self.chain, views, block, aggregate=aggregate), strict=True):
            if isinstance(raw, Reverted):
                reason = decode_revert(raw.data, self.abi) if raw.data else None
                results.append(ContractReverted(reason or "reverted without a reason", raw.data))
            elif isinstance(raw, RpcError):
                results.append(as_revert(raw, self.abi))
            elif isinstance(raw, Exception):
                raise raw
            else:
                results.append(self.abi.decode_output(fn, raw, len(args)))
        return results

    def request(self, fn: str, *args: Any, label: str | None = None) -> TxRequest:
        """A transaction calling `fn`, named in messages by `label` (default: the call and its arguments, as in
        `addDevice 0x12…` or `setAllowAnyDevice true`)."""
        named = label or " ".join([fn, *(_arg_text(a) for a in args)])
        return TxRequest(self.address, self.abi.encode_call(fn, *args), named, self.abi)

    def supports_interface(self, interface_id: bytes) -> bool:
        """ERC-165; a contract without it (revert, empty or odd answer) does not support anything."""
        try:
            data = self.chain.call(self.address, IERC165_ID + interface_id.ljust(32, b"\0"), abi=self.abi)
        except ContractReverted:
            return False
        return len(data) == 32 and int.from_bytes(data, "big") == 1

    def implementation(self) -> str | None:
        """The EIP-1967 implementation behind this proxy, or None when it is not a proxy."""
        raw = self.chain.rpc.call("eth_getStorageAt", [self.address, ERC1967_IMPLEMENTATION_SLOT, "latest"])
        value = int(raw, 16)
        if value == 0:
            return None
        return str(to_checksum_address(value.to_bytes(20, "big")))


class DstackContract(Contract, ABC):
    """A dstack contract (DstackApp, DstackKms: both Ownable and IAppAuth) of one of warden's artifacts
    (`artifact`), opened by address once it is checked to be one."""

    artifact: ClassVar[str]

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, address, load_artifact(self.artifact).abi)

    @classmethod
    def open(cls, chain: Chain, address: str) -> Self:
        """Bind to an address after checking it holds such a contract, with a clear error (BadInput) if not."""
        contract = cls(chain, contract_at(chain, address, f"{cls.role} address"))
        contract.check_kind()
        return contract

    @abstractmethod
    def check_kind(self) -> None:
        """Raise BadInput unless the contract at the address is an `artifact` (a cheap check, as ERC-165)."""

    def owner(self) -> str:
        return str(self.call("owner"))

    def is_app_allowed(self, boot: BootCheck) -> tuple[bool, str]:
        """IAppAuth.isAppAllowed: whether a CVM booting with `boot` may get its keys, and why not."""
        allowed, reason = self.call("isAppAllowed", boot.as_abi())
        return bool(allowed), str(reason)


def _arg_text(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value).lower() if isinstance(value, bool) else str(value)
