"""Read a contract's history with eth_getLogs in windows that adapt to what the node accepts.

Public nodes cap the block range or the number of results of one eth_getLogs; archive-free nodes
are slow on wide ranges. The scanner halves its window when the node refuses or times out and
doubles it while answers come back quickly, and it starts at the block the contract was created in,
found by bisection on eth_getCode instead of scanning from genesis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.chain.abi import ContractAbi, DecodedLog
from warden.chain.connection import Chain
from warden.chain.rpc import RpcError
from warden.errors import BadInput, OperationFailed

# Phrases nodes use when a range or result set is too large (geth, erigon, alchemy, infura, base …).
RANGE_REFUSALS = (
    "range",
    "limit",
    "too many",
    "too large",
    "exceed",
    "response size",
    "query returned more than",
    "timeout",
    "timed out",
)


def find_creation_block(chain: Chain, address: str, head: int | None = None) -> int:
    """The first block at which `address` has code (binary search over eth_getCode).

    A node that keeps no old state (a pruned node, a restarted devnet) cannot answer for past blocks;
    then the answer is 0, so a scan from there still finds every event, only more slowly.
    """
    head = chain.block_number() if head is None else head
    if not chain.get_code(address, head):
        raise BadInput(f"no contract at {address} on chain {chain.chain_id}")
    low, high = 0, head  # invariant: code at `high`
    while low < high:
        middle = (low + high) // 2
        try:
            has_code = bool(chain.get_code(address, middle))
        except RpcError:
            return 0
        if has_code:
            high = middle
        else:
            low = middle + 1
    return high


@dataclass
class ScanStats:
    requests: int = 0
    refusals: int = 0
    windows: list[int] = field(default_factory=list)


@dataclass
class LogScanner:
    """Scan [from_block, to_block] for logs of one contract, adapting the window size."""

    chain: Chain
    address: str
    topics: list[Any] | None = None
    window: int = 2_000
    min_window: int = 1
    max_window: int = 100_000
    fast_seconds: float = 0.5
    stats: ScanStats = field(default_factory=ScanStats)

    def scan(
        self, from_block: int, to_block: int, on_progress: Callable[[int, int], None] | None = None
    ) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        start = from_block
        while start <= to_block:
            end = min(to_block, start + self.window - 1)
            began = time.monotonic()
            self.stats.requests += 1
            try:
                batch = self.chain.get_logs(self.address, start, end, self.topics)
            except OperationFailed as exc:
                if not _is_range_refusal(exc) or self.window <= self.min_window:
                    raise
                self.stats.refusals += 1
                self.window = max(self.min_window, self.window // 2)
                # do not grow back into a range the node has refused: that would cost a refusal per window
                self.max_window = min(self.max_window, self.window)
                continue
            self.stats.windows.append(end - start + 1)
            logs.extend(batch)
            if time.monotonic() - began < self.fast_seconds:
                self.window = min(self.max_window, self.window * 2)
            if on_progress:
                on_progress(end - from_block + 1, to_block - from_block + 1)
            start = end + 1
        return logs


def decode_logs(abi: ContractAbi, logs: Sequence[dict[str, Any]]) -> list[DecodedLog]:
    """Decode and order by (block, log index); logs of unknown events are skipped."""
    decoded = [d for d in (abi.decode_log(log) for log in logs) if d is not None]
    return sorted(decoded, key=lambda d: (d.block_number, d.log_index))


def _is_range_refusal(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(phrase in text for phrase in RANGE_REFUSALS)
