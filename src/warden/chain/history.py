"""A contract's events from its creation to the head: the one way warden reads on-chain history.

Creation block by bisection, logs by the adaptive scanner, and (when a cache is given) only the
blocks not seen before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.chain.abi import DecodedLog
from warden.chain.contract import Contract
from warden.chain.events import LogScanner, ScanStats, decode_logs, find_creation_block
from warden.chain.logcache import REORG_DEPTH, CachedScan, LogCache
from warden.errors import OperationFailed


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
) -> History:
    """Decoded events of the given names, oldest first, complete up to the returned head."""
    chain = contract.chain
    topics = [["0x" + contract.abi.event_topic(n).hex() for n in sorted(event_names)]]
    head_hex, genesis = chain.rpc.batch([("eth_blockNumber", []), ("eth_getBlockByNumber", ["0x0", False])])
    if isinstance(head_hex, Exception):
        raise head_hex
    head = int(head_hex, 16)
    genesis_hash = genesis["hash"] if isinstance(genesis, dict) else "unknown"
    key = f"{chain.chain_id}:{genesis_hash}:{contract.address.lower()}:{','.join(topics[0])}"

    cached = _usable(contract, cache.get(key) if cache else None, head)
    if cached is None:
        start, old_logs = find_creation_block(chain, contract.address, head), []
    else:
        start, old_logs = cached.scanned_to + 1, cached.logs
    scanner = LogScanner(chain, contract.address, topics)
    new_logs = scanner.scan(start, head) if start <= head else []

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
