"""A contract's events from its creation to the head: the one way warden reads on-chain history.

Creation block by bisection, logs by the adaptive scanner, and (when a cache is given) only the
blocks not seen before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.chain.abi import DecodedLog
from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.events import DEFAULT_BATCH, LogScanner, ScanStats, creation_block, decode_logs
from warden.chain.logcache import REORG_DEPTH, CachedScan, LogCache
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
    cache: LogCache | None = None,
    reorg_depth: int = REORG_DEPTH,
    limits: ProviderLimits | None = None,
    from_block: int | None = None,
) -> History:
    """Decoded events of the given names, oldest first, complete up to the returned head.

    `limits`: the provider's range/batch limits given from outside (a profile); otherwise what the cache
    learned about this endpoint, or learned now. `from_block`: where to start when the node is pruned and
    the creation block cannot be found (default 0).
    """
    chain = contract.chain
    topics = [["0x" + contract.abi.event_topic(n).hex() for n in sorted(event_names)]]
    head_hex, genesis = chain.rpc.batch([("eth_blockNumber", []), ("eth_getBlockByNumber", ["0x0", False])])
    if isinstance(head_hex, Exception):
        raise head_hex
    head = int(head_hex, 16)
    genesis_hash = genesis["hash"] if isinstance(genesis, dict) else "unknown"
    key = f"{chain.chain_id}:{genesis_hash}:{contract.address.lower()}:{','.join(topics[0])}"

    endpoint = endpoint_key(chain.rpc.url)
    known = limits or (cache.get_limits(endpoint) if cache else None) or ProviderLimits()
    learned = ProviderLimits(known.max_range, known.max_batch, known.batches)
    probes = (learned.max_batch or DEFAULT_BATCH) if learned.batches else 1
    cached = _usable(contract, cache.get(key) if cache else None, head)
    how = "cache"
    if cached is None:
        start, how = creation_block(chain, contract.address, head, fallback=from_block or 0, probes=min(probes, 16))
        old_logs: list[dict[str, Any]] = []
        if how != "bisection":
            logger.warning("%s", how)
    else:
        start, old_logs = cached.scanned_to + 1, cached.logs
    scanner = LogScanner(chain, contract.address, topics, batch_size=DEFAULT_BATCH, limits=learned)
    scanner.stats.creation = how
    new_logs = scanner.scan(start, head) if start <= head else []
    if cache is not None and learned != known:
        cache.put_limits(endpoint, learned)

    if cache is not None:
        safe = head - reorg_depth
        if safe >= start - 1 and safe >= 0:
            block = chain.rpc.call("eth_getBlockByNumber", [hex(safe), False])
            if block:
                keep = old_logs + [log for log in new_logs if int(log["blockNumber"], 16) <= safe]
                cache.put(key, CachedScan(safe, str(block["hash"]), keep))
    return History(
        events=decode_logs(contract.abi, _unique(old_logs + new_logs)),
        head=head,
        from_cache=len(old_logs),
        scan=scanner.stats,
    )


def _usable(contract: Contract, cached: CachedScan | None, head: int) -> CachedScan | None:
    """The cached scan, if the chain still has the block it ended at (no deep reorg, no reset)."""
    if cached is None or cached.scanned_to > head:
        return None
    try:
        block = contract.chain.rpc.call("eth_getBlockByNumber", [hex(cached.scanned_to), False])
    except OperationFailed:
        return None
    if not block or block.get("hash") != cached.block_hash:
        return None
    return cached


def _unique(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for log in logs:
        ident = (str(log["blockNumber"]), str(log["logIndex"]))
        if ident not in seen:
            seen.add(ident)
            out.append(log)
    return out


def block_times(
    chain: Chain, blocks: Sequence[int], cache: LogCache | None = None, batch_size: int = 200
) -> dict[int, int]:
    """Block timestamps (unix seconds): from the cache when it has them, the rest in batches (then cached).

    Only blocks at least REORG_DEPTH below the head are cached (a reorg may change a recent block's time).
    """
    wanted = sorted(set(blocks))
    times: dict[int, int] = {}
    chain_key = ""
    if cache is not None and wanted:
        head_hex, genesis = chain.rpc.batch([("eth_blockNumber", []), ("eth_getBlockByNumber", ["0x0", False])])
        if isinstance(head_hex, Exception):
            raise head_hex
        chain_key = f"{chain.chain_id}:{genesis['hash'] if isinstance(genesis, dict) else 'unknown'}"
        times = cache.get_block_times(chain_key, wanted)
    missing = [b for b in wanted if b not in times]
    fetched: dict[int, int] = {}
    for start in range(0, len(missing), batch_size):
        chunk = missing[start : start + batch_size]
        answers = chain.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in chunk])
        for number, block in zip(chunk, answers, strict=True):
            if isinstance(block, dict):
                fetched[number] = int(block["timestamp"], 16)
    if cache is not None and fetched:
        safe = int(head_hex, 16) - REORG_DEPTH
        cache.put_block_times(chain_key, {n: t for n, t in fetched.items() if n <= safe})
    return times | fetched
