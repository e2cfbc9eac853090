"""A local cache of scanned logs, so a second `list` or `history` asks the node only for new blocks.

Keyed by chain id, the chain's genesis hash (two devnets share chain id 31337 and contract addresses)
and contract address. Only blocks at least `REORG_DEPTH` below the head are cached, and the hash of
the last cached block is checked on every use: a reorg of recent blocks never reaches the cache, and
a deeper one drops it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.chain.provider_limits import ProviderLimits

REORG_DEPTH = 64


@dataclass
class CachedScan:
    scanned_to: int  # every log up to and including this block is in `logs`
    block_hash: str  # hash of block `scanned_to` when it was cached
    logs: list[dict[str, Any]]


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
            "CREATE TABLE IF NOT EXISTS limits"
            " (endpoint TEXT PRIMARY KEY, max_range INTEGER, max_batch INTEGER, batches INTEGER)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS block_times"
            " (chain TEXT, number INTEGER, timestamp INTEGER, PRIMARY KEY (chain, number))"
        )
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
                    "SELECT max_range, max_batch, batches FROM limits WHERE endpoint = ?", (endpoint,)
                ).fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else ProviderLimits(row[0], row[1], bool(row[2]))

    def put_limits(self, endpoint: str, limits: ProviderLimits) -> None:
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT OR REPLACE INTO limits VALUES (?, ?, ?, ?)",
                    (endpoint, limits.max_range, limits.max_batch, int(limits.batches)),
                )
        except sqlite3.Error:
            pass

    def get_block_times(self, chain: str, numbers: list[int]) -> dict[int, int]:
        """Cached timestamps of the given blocks of one chain (`chain`: chain id and genesis hash)."""
        found: dict[int, int] = {}
        try:
            with self._connect() as db:
                for start in range(0, len(numbers), 500):
                    chunk = numbers[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT number, timestamp FROM block_times WHERE chain = ? AND number IN ({marks})",
                        (chain, *chunk),
                    )
                    found.update({int(n): int(t) for n, t in rows})
        except sqlite3.Error:
            return {}
        return found

    def put_block_times(self, chain: str, times: dict[int, int]) -> None:
        try:
            with self._connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO block_times VALUES (?, ?, ?)", [(chain, n, t) for n, t in times.items()]
                )
        except sqlite3.Error:
            pass
