"""Read a contract's history with eth_getLogs in windows that adapt to what the node accepts.

Public nodes cap the block range or the number of results of one eth_getLogs, and the batch size. The
scanner learns the widest range the node accepts from its errors (the number they name, else a search
between the widest accepted and the narrowest refused width), then sends many windows per JSON-RPC batch,
narrowing the batch when the node refuses it. It starts at the block the contract was created in, found
by a search over eth_getCode (several probes per batch) instead of scanning from genesis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from warden.chain.abi import ContractAbi, DecodedLog
from warden.chain.connection import Chain
from warden.chain.provider_limits import (
    BATCH_REFUSALS,
    COMMON_RANGES,
    ProviderLimits,
    batch_in_message,
    is_range_refusal,
    is_result_count_refusal,
    range_in_message,
)
from warden.chain.rpc import RpcError, RpcUnavailable
from warden.errors import BadInput, OperationFailed

DEFAULT_BATCH = 50  # windows per JSON-RPC batch until the provider says less
IN_FLIGHT = 4  # batches sent at once (halved while the provider answers 429)


def find_creation_block(
    chain: Chain, address: str, head: int | None = None, *, fallback: int = 0, probes: int = 1
) -> int:
    """The first block at which `address` has code (search over eth_getCode, `probes` blocks per round trip).

    A node that keeps no old state (a pruned node, a restarted devnet) cannot answer for past blocks;
    then the answer is `fallback` (0 unless the caller knows better), so a scan from there still finds
    every event, only more slowly. `creation_block` also tells which of the two happened.
    """
    return creation_block(chain, address, head, fallback=fallback, probes=probes)[0]


def creation_block(
    chain: Chain, address: str, head: int | None = None, *, fallback: int = 0, probes: int = 1
) -> tuple[int, str]:
    """`find_creation_block` and how it was found: "bisection", or "pruned node: from block N"."""
    head = chain.block_number() if head is None else head
    if not chain.get_code(address, head):
        raise BadInput(f"no contract at {address} on chain {chain.chain_id}")
    low, high = 0, head  # invariant: code at `high`, none below `low`
    while low < high:
        count = max(1, min(probes, high - low))
        points = sorted({low + (high - low) * (i + 1) // (count + 1) for i in range(count)})
        try:
            if len(points) == 1:
                codes: list[Any] = [chain.rpc.call("eth_getCode", [address, hex(points[0])])]
            else:
                codes = chain.rpc.batch([("eth_getCode", [address, hex(p)]) for p in points])
        except RpcError:
            if len(points) > 1:
                probes = 1  # batches refused: one probe per round trip
                continue
            return fallback, f"pruned node (no state at old blocks): scanned from block {fallback}"
        for error in (c for c in codes if isinstance(c, Exception)):
            if _is_batch_refusal(error) and len(points) > 1:
                probes = 1
                break
            return fallback, f"pruned node (no state at old blocks): scanned from block {fallback}"
        else:
            for point, code in zip(points, codes, strict=True):
                if code not in (None, "0x", ""):
                    high = point
                    break
                low = point + 1
    return high, "bisection"


@dataclass
class ScanStats:
    requests: int = 0  # eth_getLogs calls sent (refused ones included)
    round_trips: int = 0  # HTTP requests carrying them (a batch counts once)
    refusals: int = 0
    batch_refusals: int = 0
    windows: list[int] = field(default_factory=list)
    creation: str = ""  # how the first block was found ("bisection", or why not)


@dataclass
class LogScanner:
    """Scan [from_block, to_block] for logs of one contract in the widest windows the node accepts.

    Until the node's range limit is known the scanner probes one window at a time (doubling while answers
    come quickly, narrowing on refusals, using the limit the error names when it names one); once it is
    known it sends `batch_size` windows per JSON-RPC batch, `in_flight` batches at once. `limits` (shared
    with the caller, who may persist it) receives what was learned and may carry values given from outside.
    """

    chain: Chain
    address: str
    topics: list[Any] | None = None
    window: int = 2_000
    min_window: int = 1
    max_window: int = 100_000
    fast_seconds: float = 0.5
    batch_size: int = 1
    in_flight: int = IN_FLIGHT
    limits: ProviderLimits = field(default_factory=ProviderLimits)
    stats: ScanStats = field(default_factory=ScanStats)

    def __post_init__(self) -> None:
        self._accepted = 0  # widest window answered
        self._refused: int | None = None  # narrowest window refused
        self._settled = False
        self._batch_answered = False
        if self.limits.max_range:
            self.window = self.max_window = max(self.min_window, min(self.max_window, self.limits.max_range))
            self._settled = True
        if self.limits.max_batch:
            self.batch_size = self.limits.max_batch
        if not self.limits.batches:
            self.batch_size = 1

    def scan(
        self, from_block: int, to_block: int, on_progress: Callable[[int, int], None] | None = None
    ) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        start = from_block
        while start <= to_block:
            if self._settled and self.batch_size > 1 and self.limits.batches:
                start = self._batch(start, to_block, logs)
            else:
                start = self._single(start, to_block, logs)
            if on_progress:
                on_progress(min(start, to_block + 1) - from_block, to_block - from_block + 1)
        return logs

    def _single(self, start: int, to_block: int, logs: list[dict[str, Any]]) -> int:
        end = min(to_block, start + self.window - 1)
        began = time.monotonic()
        self.stats.requests += 1
        self.stats.round_trips += 1
        try:
            found = self.chain.get_logs(self.address, start, end, self.topics)
        except OperationFailed as exc:
            if not is_range_refusal(exc):
                raise
            self._narrow(end - start + 1, exc)
            return start
        self.stats.windows.append(end - start + 1)
        logs.extend(found)
        width = end - start + 1
        if end < to_block or width == self.window:
            self._widen(width, time.monotonic() - began)
        return end + 1

    def _batch(self, start: int, to_block: int, logs: list[dict[str, Any]]) -> int:
        """Up to `in_flight` batches of `batch_size` windows at once; answers are taken in block order, and
        at the first refusal everything after it is dropped and asked again (nothing counted twice)."""
        groups: list[list[tuple[int, int]]] = []
        low = start
        at_once = self.in_flight if self._batch_answered else 1  # one batch first: the node may refuse them
        while low <= to_block and len(groups) < at_once:
            ranges: list[tuple[int, int]] = []
            while low <= to_block and len(ranges) < self.batch_size:
                ranges.append((low, min(to_block, low + self.window - 1)))
                low = ranges[-1][1] + 1
            groups.append(ranges)
        retries = self.chain.rpc.stats.retries
        if len(groups) == 1:
            answers = [self._send(groups[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(groups)) as pool:
                answers = list(pool.map(self._send, groups))
        if self.chain.rpc.stats.retries > retries and self.in_flight > 1:
            self.in_flight = max(1, self.in_flight // 2)  # the provider throttles (429): fewer at once
        for ranges, answer in zip(groups, answers, strict=True):
            resume = self._take(ranges, answer, logs)
            if resume is not None:
                return resume
        return groups[-1][-1][1] + 1

    def _send(self, ranges: list[tuple[int, int]]) -> list[Any] | Exception:
        calls = [("eth_getLogs", [self.query(a, b)]) for a, b in ranges]
        try:
            return self.chain.rpc.batch(calls)
        except (RpcError, RpcUnavailable) as exc:
            return exc

    def _take(
        self, ranges: list[tuple[int, int]], answer: list[Any] | Exception, logs: list[dict[str, Any]]
    ) -> int | None:
        """Add one batch's logs; the block to resume from when part of it was refused, else None."""
        self.stats.round_trips += 1
        self.stats.requests += len(ranges)
        if isinstance(answer, Exception):
            if isinstance(answer, RpcUnavailable) and "HTTP 4" not in str(answer):
                raise answer
            self._refuse_batch(len(ranges), answer)
            return ranges[0][0]
        if answer and all(isinstance(a, Exception) and _is_batch_refusal(a) for a in answer):
            self._refuse_batch(len(ranges), answer[0])
            return ranges[0][0]
        self._batch_answered = True
        for (a, b), found in zip(ranges, answer, strict=True):
            if isinstance(found, Exception):
                if not is_range_refusal(found):
                    raise found
                self._narrow(b - a + 1, found)
                return a
            self.stats.windows.append(b - a + 1)
            logs.extend(found)
        return None

    def query(self, low: int, high: int) -> dict[str, Any]:
        query: dict[str, Any] = {"address": self.address, "fromBlock": hex(low), "toBlock": hex(high)}
        if self.topics:
            query["topics"] = self.topics
        return query

    def _widen(self, width: int, seconds: float) -> None:
        self._accepted = max(self._accepted, width)
        if self._refused is None:
            if seconds < self.fast_seconds and not self._settled:
                self.window = min(self.max_window, self.window * 2)
            if self.window >= self.max_window:
                self._settle(self.max_window, learned=False)
            return
        upper = self._refused - 1
        if upper - self._accepted <= max(1, self._accepted // 10):
            self._settle(self._accepted)
            return
        self.window = _next_probe(self._accepted, upper)

    def _narrow(self, width: int, exc: Exception) -> None:
        self.stats.refusals += 1
        named = range_in_message(exc)
        if named is not None and named < width:
            if named < self.min_window:
                raise exc
            self._settle(named)
            return
        if self.window <= self.min_window or width <= self.min_window:
            raise exc
        if is_result_count_refusal(exc):
            # too many results here, not too many blocks: narrower, but no limit to remember
            self.window = max(self.min_window, width // 2)
            self.max_window = min(self.max_window, self.window)
            return
        self._refused = width if self._refused is None else min(self._refused, width)
        self._settled = False
        if self._accepted >= self._refused:
            self._accepted = 0
        if self._refused - 1 - self._accepted <= max(1, self._accepted // 10) and self._accepted:
            self._settle(self._accepted)
            return
        self.window = max(self.min_window, _next_probe(self._accepted, self._refused - 1))

    def _settle(self, width: int, learned: bool = True) -> None:
        self.window = self.max_window = width
        self._settled = True
        if learned:
            self.limits.max_range = width

    def _refuse_batch(self, size: int, exc: Exception) -> None:
        self.stats.batch_refusals += 1
        named = batch_in_message(exc)
        self.batch_size = named if named is not None and 1 < named < size else size // 2
        if self.batch_size <= 1 or _refuses_all_batches(exc):
            self.batch_size = 1
            self.limits.batches = False
        else:
            self.limits.max_batch = self.batch_size


def _next_probe(lower: int, upper: int) -> int:
    """The next width to try between the widest accepted and the narrowest refused: a common limit first."""
    for common in COMMON_RANGES:
        if lower < common <= upper:
            return common
    return max(1, (lower + upper + 1) // 2) if lower else max(1, upper // 2)


def _refuses_all_batches(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(phrase in text for phrase in ("not supported", "not allowed", "disabled", "unsupported"))


def _is_batch_refusal(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(phrase in text for phrase in BATCH_REFUSALS)


def decode_logs(abi: ContractAbi, logs: Sequence[dict[str, Any]]) -> list[DecodedLog]:
    """Decode and order by (block, log index); logs of unknown events are skipped."""
    decoded = [d for d in (abi.decode_log(log) for log in logs) if d is not None]
    return sorted(decoded, key=lambda d: (d.block_number, d.log_index))
