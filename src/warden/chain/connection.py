"""A connection to one chain: the RPC client plus the chain id it was checked against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from warden.chain.abi import ContractAbi, decode_revert
from warden.chain.provider_limits import ProviderLimits
from warden.chain.rpc import RpcClient, RpcError, redact_url
from warden.errors import BadInput, OperationFailed

# Chains warden knows by name: used to explain a chain-id mismatch and to find a public RPC.
KNOWN_CHAINS: dict[str, tuple[int, str]] = {
    "ethereum": (1, "https://eth.llamarpc.com"),
    "base": (8453, "https://mainnet.base.org"),
    "base-sepolia": (84532, "https://sepolia.base.org"),
    "anvil": (31337, "http://127.0.0.1:8545"),
}


def chain_name(chain_id: int) -> str:
    for name, (cid, _) in KNOWN_CHAINS.items():
        if cid == chain_id:
            return f"{name} ({chain_id})"
    return str(chain_id)


class ContractReverted(OperationFailed):
    """A call or transaction was rejected by the contract; `reason` is its decoded message."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = data


def revert_data(error: RpcError) -> bytes | None:
    """Find the revert payload in the places different nodes put it; None when it is not a revert."""
    candidates: list[Any] = [error.data]
    if isinstance(error.data, dict):
        candidates = [error.data.get("data"), error.data.get("result")]
    for item in candidates:
        if isinstance(item, str) and item.startswith("0x"):
            try:
                return bytes.fromhex(item[2:])
            except ValueError:
                continue
    if "revert" in error.rpc_message.lower():
        return b""
    return None


@dataclass
class FeeParams:
    """EIP-1559 fees, or a legacy gas price on chains without a base fee."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    legacy_gas_price: int | None = None

    def tx_fields(self) -> dict[str, int]:
        if self.legacy_gas_price is not None:
            return {"gasPrice": self.legacy_gas_price}
        return {"maxFeePerGas": self.max_fee_per_gas, "maxPriorityFeePerGas": self.max_priority_fee_per_gas}


BATCH_CALLS = 500  # JSON-RPC calls per batch until the provider says less


class Chain:
    """Read access to a chain; every write goes through `warden.chain.tx` on top of this."""

    def __init__(self, rpc: RpcClient, chain_id: int) -> None:
        self.rpc = rpc
        self.chain_id = chain_id
        self.limits = ProviderLimits()  # what this endpoint accepts: given (a profile), learned, or cached
        self.scan_from: int | None = None  # where history scans start when the node is pruned (--from-block)

    @classmethod
    def connect(
        cls,
        urls: str | Sequence[str],
        *,
        expected_chain_id: int | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        fail_fast: bool = False,
    ) -> Chain:
        """Connect and check the chain id; a mismatch is refused before anything else happens.

        `fail_fast`: for services, calls fail at once while the RPC refuses connections (see RpcClient)."""
        rpc = RpcClient(urls, timeout=timeout, retries=retries, fail_fast=fail_fast)
        try:
            return cls.checked(rpc, expected_chain_id)
        except Exception:
            rpc.close()
            raise

    @classmethod
    def checked(cls, rpc: RpcClient, expected_chain_id: int | None = None) -> Chain:
        """A Chain over an existing client, after asking its chain id (BadInput when it is not the expected one)."""
        chain_id = int(rpc.call("eth_chainId"), 16)
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise BadInput(
                f"wrong chain: {redact_url(rpc.url)} is chain {chain_name(chain_id)}, "
                f"expected {chain_name(expected_chain_id)}"
            )
        return cls(rpc, chain_id)

    def close(self) -> None:
        self.rpc.close()

    # -- reads -----------------------------------------------------------------------------------
    def ask(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in as few round trips as the provider takes: batches of at most its `max_batch`
        (else BATCH_CALLS), one by one when it refuses batches (then remembered). Each item is the call's
        result or the RpcError it raised."""
        if len(calls) > 1 and self.limits.batches:
            size = self.limits.max_batch or BATCH_CALLS
            out: list[Any] = []
            try:
                for start in range(0, len(calls), size):
                    out.extend(self.rpc.batch(calls[start : start + size]))
                return out
            except RpcError:
                self.limits.batches = False  # the node refuses batches: the rest one by one
                return out + self.ask(calls[len(out) :])
        answers: list[Any] = []
        for method, params in calls:
            try:
                answers.append(self.rpc.call(method, params))
            except RpcError as exc:
                answers.append(exc)
        return answers

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def get_code(self, address: str, block: int | str = "latest") -> bytes:
        return bytes.fromhex(str(self.rpc.call("eth_getCode", [address, _block(block)]))[2:])

    def balance(self, address: str) -> int:
        return int(self.rpc.call("eth_getBalance", [address, "latest"]), 16)

    def nonce(self, address: str, block: str = "pending") -> int:
        return int(self.rpc.call("eth_getTransactionCount", [address, block]), 16)

    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        abi: ContractAbi | None = None,
    ) -> bytes:
        """eth_call; a revert raises ContractReverted with the reason decoded through `abi`."""
        tx: dict[str, str] = {"to": to, "data": "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        try:
            result = self.rpc.call("eth_call", [tx, _block(block)])
        except RpcError as exc:
            raise as_revert(exc, abi) from None
        return bytes.fromhex(str(result)[2:])

    def fee_params(self) -> FeeParams:
        """Twice the latest base fee plus the node's suggested tip, so a fee spike does not strand a batch."""
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        if block.get("baseFeePerGas") is None:
            price = int(self.rpc.call("eth_gasPrice"), 16)
            return FeeParams(price, 0, legacy_gas_price=price)
        base = int(block["baseFeePerGas"], 16)
        try:
            tip = max(1, int(self.rpc.call("eth_maxPriorityFeePerGas"), 16))
        except RpcError:
            tip = 1_000_000_000
        return FeeParams(max_fee_per_gas=2 * base + tip, max_priority_fee_per_gas=tip)

    def get_logs(self, address: str, from_block: int, to_block: int, topics: list[Any] | None = None) -> list[Any]:
        query: dict[str, Any] = {"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if topics:
            query["topics"] = topics
        result = self.rpc.call("eth_getLogs", [query])
        return list(result)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
        return dict(result) if result else None


def _block(block: int | str) -> str:
    return hex(block) if isinstance(block, int) else block


def as_revert(exc: RpcError, abi: ContractAbi | None) -> OperationFailed:
    data = revert_data(exc)
    if data is None:
        return exc
    reason = decode_revert(data, abi) if data else None
    if reason is None:
        # the node put the reason in the message only ("execution reverted: Device not allowed")
        message = exc.rpc_message
        reason = message.split(":", 1)[1].strip() if ":" in message else "reverted without a reason"
    return ContractReverted(reason, data)
