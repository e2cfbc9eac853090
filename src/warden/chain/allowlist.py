"""Change a set of 32-byte ids held by a contract (devices, compose hashes, OS images) as one batch.

Read the current membership in one request, skip what is already in the wanted state, send the rest
with consecutive nonces, and (when asked) wait and re-read so each item reports what the chain says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.history import read_history
from warden.chain.inputs import hex0x
from warden.chain.logcache import LogCache
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, TxRequest, send_all, wait_all
from warden.errors import BadInput

BATCH_SIZE = 500  # calls per JSON-RPC batch: large enough to be fast, small enough for public nodes

ItemStatus = Literal["added", "removed", "already-allowed", "not-allowed", "pending", "failed"]


@dataclass
class ItemResult:
    id: bytes
    status: ItemStatus
    tx: str | None = None
    error: str | None = None

    def as_json(self, id_key: str) -> dict[str, str | None]:
        data: dict[str, str | None] = {id_key: hex0x(self.id), "status": self.status, "tx": self.tx}
        if self.error:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class AllowlistSpec:
    """How one contract exposes one set: the membership getter and the add/remove request builders."""

    contract: Contract
    getter: str  # e.g. allowedDeviceIds
    add: Callable[[bytes], TxRequest]
    remove: Callable[[bytes], TxRequest]


@dataclass(frozen=True)
class Member:
    """An id in the set now, with the block and transaction that (last) added it."""

    id: bytes
    block: int
    tx: str


def current_members(
    spec: AllowlistSpec,
    events: Sequence[str],
    added_event: str,
    arg: str,
    cache: LogCache | None = None,
) -> tuple[list[Member], int]:
    """Every id the contract's own `added_event`s name that is still in the set at the head, and the head.

    `events` are the event names read (the same list for a set's listing and its history shares one cache).
    """
    history = read_history(spec.contract, events, cache=cache)
    last_added: dict[bytes, tuple[int, str]] = {}
    for event in history.events:
        if event.event == added_event:
            last_added[bytes(event.args[arg])] = (event.block_number, event.tx_hash)
    ids = list(last_added)
    present = membership(spec, ids, block=history.head)
    return [Member(i, *last_added[i]) for i, ok in zip(ids, present, strict=True) if ok], history.head


def reject_duplicates(ids: Sequence[bytes], what: str) -> None:
    seen: set[bytes] = set()
    for item in ids:
        if item in seen:
            raise BadInput(f"{what} {hex0x(item)} is given twice")
        seen.add(item)


def membership(spec: AllowlistSpec, ids: Sequence[bytes], block: int | str = "latest") -> list[bool]:
    """Whether each id is currently in the set, in batch requests of BATCH_SIZE calls."""
    found: list[bool] = []
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        for answer in spec.contract.call_many([(spec.getter, (i,)) for i in chunk], block=block):
            if isinstance(answer, Exception):
                raise answer
            found.append(bool(answer))
    return found


@dataclass
class Plan:
    """Every item with its current status; `todo` are the ones a transaction must change."""

    results: list[ItemResult]
    todo: list[ItemResult]
    add: bool

    def requests(self, spec: AllowlistSpec) -> list[TxRequest]:
        return [(spec.add if self.add else spec.remove)(r.id) for r in self.todo]


def plan(spec: AllowlistSpec, ids: Sequence[bytes], *, add: bool) -> Plan:
    """Read the current membership; items already in the wanted state are reported, not sent."""
    current = membership(spec, ids)
    results = [ItemResult(i, "already-allowed" if add else "not-allowed") for i in ids]
    todo = [r for r, present in zip(results, current, strict=True) if present != add]
    for item in todo:
        item.status = "pending"
    return Plan(results, todo, add)


def apply(
    chain: Chain,
    signer: Signer,
    spec: AllowlistSpec,
    planned: Plan,
    *,
    wait: bool,
    timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[ItemResult]:
    """Send the plan's transactions with consecutive nonces; with `wait`, re-read the chain for each item."""
    if not planned.todo:
        return planned.results
    outcomes = send_all(chain, signer, planned.requests(spec))
    if wait:
        wait_all(chain, outcomes, timeout=timeout, on_progress=on_progress)
        after = membership(spec, [r.id for r in planned.todo])
    else:
        after = [not planned.add] * len(planned.todo)  # not re-read: report what was sent
    for result, outcome, present in zip(planned.todo, outcomes, after, strict=True):
        _settle(result, outcome, present == planned.add, planned.add)
    return planned.results


def change(
    chain: Chain,
    signer: Signer,
    spec: AllowlistSpec,
    ids: Sequence[bytes],
    *,
    add: bool,
    wait: bool,
    timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[ItemResult]:
    """Add (or remove) every id; no-ops are reported, not sent; one failure does not hide the others."""
    return apply(chain, signer, spec, plan(spec, ids, add=add), wait=wait, timeout=timeout, on_progress=on_progress)


def _settle(result: ItemResult, outcome: TxOutcome, applied: bool, add: bool) -> None:
    result.tx = outcome.tx_hash
    if applied:
        result.status = "added" if add else "removed"
    elif outcome.status in ("failed", "reverted"):
        result.status = "failed"
        result.error = outcome.error
    else:
        result.status = "pending"
        result.error = outcome.error
