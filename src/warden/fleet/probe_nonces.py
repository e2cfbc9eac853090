"""The nonces `warden probe` reports must bind: random, single use, short-lived, per workspace and node.

They live in the inventory database (table `probe_nonces`), so every control-plane worker behind a load
balancer agrees on which nonce was issued and which was used: a nonce taken from one worker can be
reported to another, and a replay is refused by all of them. A nonce is spent by one conditional UPDATE,
so two reports racing with the same nonce cannot both win.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from warden.errors import Denied
from warden.fleet.first_use import FirstUseBase, create_tables
from warden.fleet.store import Fleet, WorkspaceRef
from warden.hexutil import hex0x
from warden.identity.probe_binding import NONCE_BYTES

DEFAULT_TTL_SECONDS = 300
RETENTION_SECONDS = 86_400  # spent and expired nonces are kept a day, so a late replay is named as one


class ProbeRefused(Denied):
    """A probe report the control plane will not record (replayed, expired, for another node, unbound)."""


class ProbeNonce(FirstUseBase):
    __tablename__ = "probe_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    workspace_id: Mapped[int] = mapped_column(Integer, index=True)
    node: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class IssuedNonce:
    node: str
    nonce: bytes
    expires_at: int

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "nonce": hex0x(self.nonce), "expires_at": self.expires_at}


class ProbeNonces:
    """Issue, check and spend probe nonces in `fleet`'s database; `clock` gives unix seconds."""

    def __init__(
        self, fleet: Fleet, *, clock: Callable[[], float] = time.time, ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        create_tables(fleet, ProbeNonce)

    def _now(self) -> int:
        return int(self.clock())

    def issue(self, workspace: WorkspaceRef, node: str) -> IssuedNonce:
        """A fresh nonce for `node` (404 unless the workspace may deploy to it)."""
        name = self.fleet.node(workspace, node).name
        now = self._now()
        nonce = secrets.token_bytes(NONCE_BYTES)
        with self.fleet.session() as s:
            s.execute(delete(ProbeNonce).where(ProbeNonce.expires_at < now - RETENTION_SECONDS))
            s.add(ProbeNonce(nonce=nonce, workspace_id=workspace.id, node=name, issued_at=now,
                             expires_at=now + self.ttl_seconds, used_at=None))  # fmt: skip
        return IssuedNonce(name, nonce, now + self.ttl_seconds)

    def check(self, workspace: WorkspaceRef, node: str, nonce: bytes) -> None:
        """Raise ProbeRefused unless `nonce` was issued to this workspace for `node`, unused and unexpired."""
        with self.fleet.session() as s:
            row = s.scalars(
                select(ProbeNonce).where(ProbeNonce.nonce == nonce, ProbeNonce.workspace_id == workspace.id)
            ).first()
            if row is None:
                raise ProbeRefused(
                    f"unknown nonce {hex0x(nonce)}: this control plane did not issue it to this workspace "
                    "(take a fresh one from POST /api/probe/nonce)"
                )
            if row.node != node:
                raise ProbeRefused(f"nonce {hex0x(nonce)} was issued for node {row.node}, not {node}")
            if row.used_at is not None:
                raise ProbeRefused(f"nonce {hex0x(nonce)} was already used: a replayed probe report is refused")
            if self._now() >= row.expires_at:
                raise ProbeRefused(
                    f"nonce {hex0x(nonce)} expired {self._now() - row.expires_at + 1} s ago (a nonce is valid "
                    f"{self.ttl_seconds} s): take a fresh one and probe again"
                )

    def spend(self, workspace: WorkspaceRef, node: str, nonce: bytes) -> int:
        """Mark the nonce used, atomically (ProbeRefused if it is not valid now); the time it was spent."""
        now = self._now()
        with self.fleet.session() as s:
            spent = s.execute(
                update(ProbeNonce)
                .where(ProbeNonce.nonce == nonce, ProbeNonce.workspace_id == workspace.id, ProbeNonce.node == node)
                .where(ProbeNonce.used_at.is_(None), ProbeNonce.expires_at > now)
                .values(used_at=now)
            )
            won = getattr(spent, "rowcount", 0) == 1
        if not won:
            self.check(workspace, node, nonce)  # says why
            raise ProbeRefused(f"nonce {hex0x(nonce)} was already used: a replayed probe report is refused")
        return now

    def unspend(self, workspace: WorkspaceRef, nonce: bytes, spent_at: int) -> None:
        """Give a spent nonce back (the report could not be recorded): the probe may retry with it."""
        with self.fleet.session() as s:
            s.execute(
                update(ProbeNonce)
                .where(ProbeNonce.nonce == nonce, ProbeNonce.workspace_id == workspace.id)
                .where(ProbeNonce.used_at == spent_at)
                .values(used_at=None)
            )
