"""The chain layer's scan cache (`warden.chain.logcache.ScanCache`) in the control plane's own database.

Scanned logs per contract, what each RPC endpoint was found to accept, and block timestamps by block hash
live in three tables of the inventory database (created on first use, like the probe nonces), so every
control-plane worker and every restart reads an app's history from where the last one left off: a warm
read asks the node only for the new blocks. Like every scan cache, one that cannot be read answers
nothing and one that cannot be written drops the write; it only ever costs or saves speed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from warden.chain.logcache import CachedScan
from warden.chain.provider_limits import ProviderLimits
from warden.fleet.first_use import FirstUseBase, create_tables
from warden.fleet.store import Fleet

log = logging.getLogger(__name__)

CHUNK = 500  # hashes per IN (…) query


class ScannedLogs(FirstUseBase):
    """Every log of one contract and topic set up to `scanned_to` (JSON), and that block's hash."""

    __tablename__ = "chain_scans"

    key: Mapped[str] = mapped_column(String(1000), primary_key=True)
    scanned_to: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    logs: Mapped[str] = mapped_column(Text)


class EndpointLimits(FirstUseBase):
    __tablename__ = "chain_provider_limits"

    endpoint: Mapped[str] = mapped_column(String(200), primary_key=True)
    max_range: Mapped[int | None] = mapped_column(BigInteger)
    max_batch: Mapped[int | None] = mapped_column(Integer)
    batches: Mapped[bool] = mapped_column(Boolean)
    multicall: Mapped[bool | None] = mapped_column(Boolean)


class BlockTime(FirstUseBase):
    __tablename__ = "chain_block_times"

    hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class FleetScanCache:
    """A `ScanCache` over `fleet`'s database (SQLite or PostgreSQL)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        create_tables(fleet, ScannedLogs, EndpointLimits, BlockTime)

    def get(self, key: str) -> CachedScan | None:
        try:
            with self.fleet.session() as s:
                row = s.get(ScannedLogs, key)
                return None if row is None else CachedScan(row.scanned_to, row.block_hash, json.loads(row.logs))
        except (SQLAlchemyError, ValueError) as exc:
            log.warning("scan cache unreadable (%s): reading from the chain", exc)
            return None

    def put(self, key: str, scan: CachedScan) -> None:
        logs = json.dumps(scan.logs, separators=(",", ":"))
        self._write(ScannedLogs(key=key, scanned_to=scan.scanned_to, block_hash=scan.block_hash, logs=logs))

    def drop(self, key: str) -> None:
        try:
            with self.fleet.session() as s:
                s.execute(delete(ScannedLogs).where(ScannedLogs.key == key))
        except SQLAlchemyError as exc:
            log.warning("scan cache: cannot drop %s (%s)", key, exc)

    def get_limits(self, endpoint: str) -> ProviderLimits | None:
        try:
            with self.fleet.session() as s:
                row = s.get(EndpointLimits, endpoint)
                if row is None:
                    return None
                return ProviderLimits(row.max_range, row.max_batch, row.batches, row.multicall)
        except SQLAlchemyError:
            return None

    def put_limits(self, endpoint: str, limits: ProviderLimits) -> None:
        self._write(EndpointLimits(endpoint=endpoint, max_range=limits.max_range, max_batch=limits.max_batch,
                                   batches=limits.batches, multicall=limits.multicall))  # fmt: skip

    def get_block_times(self, hashes: Sequence[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, int] = {}
        try:
            with self.fleet.session() as s:
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start : start + CHUNK]
                    rows = s.execute(select(BlockTime.hash, BlockTime.timestamp).where(BlockTime.hash.in_(chunk)))
                    found.update({str(h): int(t) for h, t in rows})
        except SQLAlchemyError:
            return {}
        return found

    def put_block_times(self, times: dict[str, int]) -> None:
        if not times:
            return
        known = set(self.get_block_times(list(times)))
        try:
            with self.fleet.session() as s:
                s.add_all(BlockTime(hash=h, timestamp=t) for h, t in times.items() if h not in known)
        except SQLAlchemyError:
            pass  # another worker wrote the same blocks meanwhile: they are cached either way

    def _write(self, row: FirstUseBase) -> None:
        """Insert or replace one row (by its primary key)."""
        try:
            with self.fleet.session() as s:
                s.merge(row)
        except SQLAlchemyError as exc:  # e.g. two workers inserting the same key at once: one of them wins
            log.info("scan cache: write dropped (%s)", exc)
