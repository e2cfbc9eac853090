"""A local cache of scanned logs, so a second `list` or `history` asks the node only for new blocks.

Keyed by chain id, contract address and the events read. Only blocks at least `REORG_DEPTH` below the
head are cached, and the hash of the last cached block is checked on every use (in the same round trip
that asks for the head): a reorg of recent blocks never reaches the cache, a deeper one or another chain
with the same id (two devnets) drops it. Block timestamps are kept by block hash, which never changes
meaning. `ScanCache` is what a cache offers; the CLI's is this SQLite file in the user cache dir, the
control plane keeps the same in its database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from warden.chain.provider_limits import ProviderLimits

REORG_DEPTH = 64


@dataclass
class CachedScan:
    scanned_to: int  # every log up to and including this block is in `logs`
    block_hash: str  # hash of block `scanned_to` when it was cached
    logs: list[dict[str, Any]]


class ScanCache(Protocol):
    """Scanned logs per contract, provider limits per endpoint, block timestamps per block hash.

    A cache that cannot be read answers None / nothing and one that cannot be written drops the write:
    a cache only ever costs or saves speed.
    """

    def get(self, key: str) -> CachedScan | None: ...

    def put(self, key: str, scan: CachedScan) -> None: ...

    def drop(self, key: str) -> None: ...

    def get_limits(self, endpoint: str) -> ProviderLimits | None: ...

    def put_limits(self, endpoint: str, limits: ProviderLimits) -> None: ...

    def get_block_times(self, hashes: Sequence[str]) -> dict[str, int]: ...

    def put_block_times(self, times: dict[str, int]) -> None: ...


class LogCache:
    """SQLite file (one row per contract and topic set); a damaged or locked file is simply ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=2)
        db.execute(
            "CREATE TABLE IF NOT EXISTS scans (key TEXT PRIMARY KEY, scanned_to INTEGER, block_hash TEXT, logs TEXT)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS provider_limits (endpoint TEXT PRIMARY KEY, max_range INTEGER,"
            " max_batch INTEGER, batches INTEGER, multicall INTEGER)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS block_times_by_hash (hash TEXT PRIMARY KEY, timestamp INTEGER)")
        return db

    def get(self, key: str) -> CachedScan | None:
        try:
            with self._connect() as db:
                row = db.execute("SELECT scanned_to, block_hash, logs FROM scans WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        return CachedScan(int(row[0]), str(row[1]), json.loads(row[2]))

    def put(self, key: str, scan: CachedScan) -> None:
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT OR REPLACE INTO scans VALUES (?, ?, ?, ?)",
                    (key, scan.scanned_to, scan.block_hash, json.dumps(scan.logs, separators=(",", ":"))),
                )
        except sqlite3.Error:
            pass  # a cache that cannot be written only costs speed

    def drop(self, key: str) -> None:
        try:
            with self._connect() as db:
                db.execute("DELETE FROM scans WHERE key = ?", (key,))
        except sqlite3.Error:
            pass

    def get_limits(self, endpoint: str) -> ProviderLimits | None:
        """What was learned about an endpoint (see `provider_limits.endpoint_key`) on an earlier run."""
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT max_range, max_batch, batches, multicall FROM provider_limits WHERE endpoint = ?",
                    (endpoint,),
                ).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        return ProviderLimits(row[0], row[1], bool(row[2]), None if row[3] is None else bool(row[3]))

    def put_limits(self, endpoint: str, limits: ProviderLimits) -> None:
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT OR REPLACE INTO provider_limits VALUES (?, ?, ?, ?, ?)",
                    (endpoint, limits.max_range, limits.max_batch, int(limits.batches), _flag(limits.multicall)),
                )
        except sqlite3.Error:
            pass

    def get_block_times(self, hashes: Sequence[str]) -> dict[str, int]:
        """Cached timestamps of the blocks with these hashes."""
        found: dict[str, int] = {}
        wanted = list(hashes)
        try:
            with self._connect() as db:
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(f"SELECT hash, timestamp FROM block_times_by_hash WHERE hash IN ({marks})", chunk)
                    found.update({str(h): int(t) for h, t in rows})
        except sqlite3.Error:
            return {}
        return found

    def put_block_times(self, times: dict[str, int]) -> None:
        try:
            with self._connect() as db:
                db.executemany("INSERT OR REPLACE INTO block_times_by_hash VALUES (?, ?)", list(times.items()))
        except sqlite3.Error:
            pass


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)
