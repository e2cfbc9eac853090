"""A contract's events from its creation to the head: the one way warden reads on-chain history.

Creation block by bisection (on a pruned node: the KMS factory's event, else --from-block), logs by the
adaptive scanner, and (when a cache is given) only the blocks not seen before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from warden.chain.abi import DecodedLog
from warden.chain.artifacts import load_artifact
from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.events import DEFAULT_BATCH, LogScanner, ScanStats, creation_block, decode_logs
from warden.chain.logcache import REORG_DEPTH, CachedScan, ScanCache
from warden.chain.provider_limits import ProviderLimits, endpoint_key
from warden.errors import OperationFailed

logger = logging.getLogger(__name__)


@dataclass
class History:
    events: list[DecodedLog]
    head: int  # the block the history is complete up to
    from_cache: int = 0  # how many logs came from the local cache
    scan: ScanStats = field(default_factory=ScanStats)


def read_history(
    contract: Contract,
    event_names: Sequence[str],
    *,
    cache: ScanCache | None = None,
    reorg_depth: int = REORG_DEPTH,
    limits: ProviderLimits | None = None,
    from_block: int | None = None,
) -> History:
    """Decoded events of the given names, oldest first, complete up to the returned head.

    A warm read (the cache holds the contract's logs) takes two round trips: the head with the cached
    block's hash, then the new blocks' logs with the hash of the block the cache will end at.

    `limits`: the provider's range/batch limits given from outside; otherwise the chain's (a profile's,
    see `Chain.limits`), completed with what the cache learned about this endpoint, or learned now.
    `from_block`: where to start when the node is pruned and neither the creation block nor the KMS
    factory's event for the contract can be found (default: the chain's `scan_from`, else 0).
    """
    chain = contract.chain
    topics = [["0x" + contract.abi.event_topic(n).hex() for n in sorted(event_names)]]
    key = f"{chain.chain_id}:{contract.address.lower()}:{','.join(topics[0])}"
    endpoint = endpoint_key(chain.rpc.url)
    if limits is not None:
        chain.limits = replace(limits)
    elif cache is not None:
        chain.limits = _completed(chain.limits, cache.get_limits(endpoint))
    known = replace(chain.limits)
    cached = cache.get(key) if cache else None
    head, cached = _head_and_cached(chain, cached)
    how = "cache"
    old_logs: list[dict[str, Any]] = []
    if cached is None:
        probes = (chain.limits.max_batch or DEFAULT_BATCH) if chain.limits.batches else 1
        floor = from_block if from_block is not None else chain.scan_from
        start, how = creation_block(chain, contract.address, head, fallback=-1, probes=min(probes, 16))
        if start < 0:
            start, how = _start_on_pruned_node(chain, contract.address, head, floor)
            logger.warning("%s", how)
    else:
        start, old_logs = cached.scanned_to + 1, cached.logs
    safe = head - reorg_depth
    keep_to = safe if cache is not None and safe >= start - 1 and safe >= 0 else None
    scanner = LogScanner(chain, contract.address, topics, batch_size=DEFAULT_BATCH, limits=chain.limits)
    scanner.stats.creation = how
    new_logs, keep_hash = _scan_new_blocks(scanner, start, head, keep_to)
    if cache is not None:
        if chain.limits != known:
            cache.put_limits(endpoint, chain.limits)
        if keep_to is not None and keep_hash:
            keep = old_logs + [log for log in new_logs if int(log["blockNumber"], 16) <= keep_to]
            cache.put(key, CachedScan(keep_to, keep_hash, keep))
    return History(
        events=decode_logs(contract.abi, _unique(old_logs + new_logs)),
        head=head,
        from_cache=len(old_logs),
        scan=scanner.stats,
    )


def remember_limits(chain: Chain, cache: ScanCache | None) -> None:
    """Persist what the chain's endpoint was found to accept since (e.g. whether Multicall3 is there)."""
    if cache is not None:
        endpoint = endpoint_key(chain.rpc.url)
        if cache.get_limits(endpoint) != chain.limits:
            cache.put_limits(endpoint, chain.limits)


def _completed(given: ProviderLimits, learned: ProviderLimits | None) -> ProviderLimits:
    """The limits given from outside, each unknown value filled in from what was learned before."""
    if learned is None:
        return given
    return ProviderLimits(
        given.max_range if given.max_range is not None else learned.max_range,
        given.max_batch if given.max_batch is not None else learned.max_batch,
        given.batches and learned.batches,
        given.multicall if given.multicall is not None else learned.multicall,
    )


def _head_and_cached(chain: Chain, cached: CachedScan | None) -> tuple[int, CachedScan | None]:
    """The head, and the cached scan if the chain still has the block it ended at (no deep reorg, no
    other chain with the same id), asked in one round trip."""
    calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
    if cached is not None:
        calls.append(("eth_getBlockByNumber", [hex(cached.scanned_to), False]))
    answers = chain.ask(calls)
    if isinstance(answers[0], Exception):
        raise answers[0]
    head = int(answers[0], 16)
    if cached is None or cached.scanned_to > head:
        return head, None
    block = answers[1]
    if not isinstance(block, dict) or block.get("hash") != cached.block_hash:
        return head, None
    return head, cached


def _scan_new_blocks(
    scanner: LogScanner, start: int, head: int, keep_to: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Logs of [start, head], and the hash of block `keep_to` (where the cache will end).

    When the new blocks fit in one batch of windows of a known limit (a warm read), logs and hash share a
    round trip; a refused window sends the scan the long way (the scanner learns the limit anew).
    """
    chain = scanner.chain
    if start > head:
        return [], None  # nothing new: the cache stays as it is
    block_call = ("eth_getBlockByNumber", [hex(keep_to), False]) if keep_to is not None else None
    known, batch = chain.limits.max_range, chain.limits.max_batch or DEFAULT_BATCH
    if block_call is not None and known is not None and chain.limits.batches:
        ranges = [(low, min(head, low + known - 1)) for low in range(start, head + 1, known)]
        if len(ranges) + 1 <= batch:
            answers = chain.ask([*(("eth_getLogs", [scanner.query(a, b)]) for a, b in ranges), block_call])
            *found, block = answers
            if isinstance(block, dict) and not any(isinstance(f, Exception) for f in found):
                scanner.stats.requests += len(ranges)
                scanner.stats.round_trips += 1
                scanner.stats.windows.extend(b - a + 1 for a, b in ranges)
                return [log for logs in found for log in logs], str(block["hash"])
    logs = scanner.scan(start, head)
    if block_call is None:
        return logs, None
    block = chain.rpc.call(*block_call)
    return logs, str(block["hash"]) if isinstance(block, dict) else None


def _start_on_pruned_node(chain: Chain, address: str, head: int, floor: int | None) -> tuple[int, str]:
    """Where to scan from when the node keeps no old state: `floor` when given (--from-block / the
    profile's from_block), else the block of the KMS factory's AppDeployedViaFactory event for this
    contract (one wide topic-filtered query, when the provider answers it), else 0."""
    pruned = "pruned node (no state at old blocks): scanned from block"
    if floor is not None:
        return floor, f"{pruned} {floor} (--from-block)"
    topic = "0x" + load_artifact("DstackKms").abi.event_topic("AppDeployedViaFactory").hex()
    query = {"fromBlock": "0x0", "toBlock": hex(head), "topics": [topic, "0x" + address[2:].lower().rjust(64, "0")]}
    try:
        found = chain.rpc.call("eth_getLogs", [query])
    except OperationFailed:
        found = None
    if found:
        block = min(int(log["blockNumber"], 16) for log in found)
        return block, f"{pruned} {block}, where the KMS factory created it"
    return 0, f"{pruned} 0 (pass --from-block or set from_block in the profile to start later)"


def _unique(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for log in logs:
        ident = (str(log["blockNumber"]), str(log["logIndex"]))
        if ident not in seen:
            seen.add(ident)
            out.append(log)
    return out


def block_times(chain: Chain, blocks: Sequence[tuple[int, str]], cache: ScanCache | None = None) -> dict[int, int]:
    """Timestamps (unix seconds) of the given (number, hash) blocks: from the cache, kept by block hash
    (a hash names one block for good, reorg or not), the rest in batches (then cached)."""
    wanted = dict(sorted(set(blocks)))
    known = cache.get_block_times([h for h in wanted.values() if h]) if cache is not None and wanted else {}
    times = {n: known[h] for n, h in wanted.items() if h in known}
    missing = [n for n in wanted if n not in times]
    size = chain.limits.max_batch or 200
    fetched: dict[str, int] = {}
    for start in range(0, len(missing), size):
        chunk = missing[start : start + size]
        for number, block in zip(
            chunk, chain.ask([("eth_getBlockByNumber", [hex(b), False]) for b in chunk]), strict=True
        ):
            if isinstance(block, dict):
                times[number] = int(block["timestamp"], 16)
                fetched[str(block["hash"])] = times[number]
    if cache is not None and fetched:
        cache.put_block_times(fetched)
    return times
