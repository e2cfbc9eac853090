"""Carry a Plan out: check who signs, simulate, send with consecutive nonces, wait, re-read, report; or,
for an owner that is not this signer (a Safe, a timelock, someone else's key), hand the changes back as a
Safe Transaction Builder batch or calldata.

The signer is asked for only when something will be sent, so `--calldata` never prompts for a password.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from warden.chain.allowlist import AllowlistSpec, FlagSpec, flag_value, membership
from warden.chain.contract import Contract
from warden.chain.safe import calldata_lines, safe_batch, write_safe_batch
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, WaitProgress, check_owner, send_all, wait_all
from warden.changes.plan import Change, Plan
from warden.errors import BadInput

How = Literal["send", "safe-batch", "calldata"]
ResultStatus = Literal["added", "removed", "set", "pending", "failed"]
DONE: dict[str, ResultStatus] = {"add": "added", "remove": "removed", "set": "set"}


@dataclass(frozen=True)
class Delivery:
    """How a plan is carried out: sent (and waited for), or written for the owner to sign elsewhere."""

    how: How = "send"
    wait: bool = False
    timeout: float = 60.0
    safe_batch: Path | None = None

    @property
    def offline(self) -> bool:
        return self.how != "send"


@dataclass
class Result:
    change: Change
    status: ResultStatus
    tx: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.change.json_fields(), "status": self.status, "tx": self.tx}
        if self.error:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class Offline:
    """The plan's transactions for their owner to sign: a Safe batch, or target + calldata per change."""

    plan: Plan
    owner: str
    owner_is_contract: bool

    @property
    def calls(self) -> list[dict[str, str]]:
        return calldata_lines(self.plan.requests())

    def batch(self, name: str, description: str = "") -> dict[str, Any]:
        chain = self.plan.chain()
        assert chain is not None, "an empty plan has no batch"
        return safe_batch(self.plan.requests(), chain_id=chain.chain_id, safe=self.owner, name=name,
                          description=description)  # fmt: skip


@dataclass
class Report:
    """What happened to every entry of the plan, in the plan's order."""

    plan: Plan
    delivery: Delivery
    results: list[Result] = field(default_factory=list)
    offline: Offline | None = None

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def pending(self) -> list[Result]:
        return [r for r in self.results if r.status == "pending"]

    def rows(self) -> list[dict[str, Any]]:
        """One JSON row per entry: unchanged ones with their state, changes with their outcome."""
        by_change = {id(r.change): r for r in self.results}
        rows: list[dict[str, Any]] = []
        for entry in self.plan.entries:
            if isinstance(entry, Change):
                result = by_change.get(id(entry))
                rows.append(result.as_json() if result else {**entry.json_fields(), "status": "planned", "tx": None})
            else:
                rows.append({**entry.json_fields(), "status": entry.state, "tx": None})
        return rows


def owners(plan: Plan) -> dict[str, str]:
    """Each touched contract's owner, read once."""
    return {c.address: str(c.call("owner")) for c in plan.contracts()}


def offline_changes(plan: Plan) -> Offline:
    """The plan for its one owner to sign; a plan over contracts with different owners cannot be one batch."""
    found = set(owners(plan).values())
    if len(found) != 1:
        raise BadInput(
            f"the changes touch contracts with {len(found)} different owners ({', '.join(sorted(found))}): "
            "one Safe batch is for one owner; change one app at a time"
        )
    owner = found.pop()
    chain = plan.chain()
    assert chain is not None
    return Offline(plan, owner, bool(chain.get_code(owner)))


def check_signer(plan: Plan, signer: Signer) -> None:
    """Refuse before anything is simulated or sent when the signer does not own every contract touched."""
    for contract in plan.contracts():
        check_owner(str(contract.call("owner")), signer, _subject(contract), contract.chain)


def carry_out(
    plan: Plan,
    delivery: Delivery,
    signer: Callable[[], Signer],
    *,
    batch_name: str = "warden changes",
    on_wait: WaitProgress | None = None,
) -> Report:
    """Carry the plan out as `delivery` says (see the module docstring); an empty plan sends nothing."""
    report = Report(plan, delivery)
    changes = plan.changes
    if not changes:
        return report
    if delivery.offline:
        report.offline = offline_changes(plan)
        if delivery.how == "safe-batch":
            assert delivery.safe_batch is not None
            write_safe_batch(delivery.safe_batch, report.offline.batch(batch_name))
        report.results = [Result(c, "pending") for c in changes]  # awaiting the owner's signature
        return report
    key = signer()
    check_signer(plan, key)
    return send(plan, key, delivery, on_wait=on_wait)


def send(plan: Plan, signer: Signer, delivery: Delivery, *, on_wait: WaitProgress | None = None) -> Report:
    """Simulate all, check funds, send with consecutive nonces; with `wait`, wait once (telling `on_wait` how it
    goes) and re-read the chain."""
    chain = plan.chain()
    report = Report(plan, delivery)
    if chain is None:
        return report
    changes = plan.changes
    outcomes = send_all(chain, signer, [c.request() for c in changes])
    if delivery.wait:
        wait_all(chain, outcomes, timeout=delivery.timeout, on_wait=on_wait)
        applied = reread(changes)
    else:
        applied = [False] * len(changes)  # not re-read: report what was sent
    report.results = [_settle(c, o, a) for c, o, a in zip(changes, outcomes, applied, strict=True)]
    return report


def reread(changes: Sequence[Change]) -> list[bool]:
    """Whether the chain now says what each change wanted (one batch per set, one call per flag)."""
    by_spec: dict[tuple[str, str], list[int]] = {}
    for i, change in enumerate(changes):
        by_spec.setdefault((change.contract.address, change.spec.getter), []).append(i)
    applied = [False] * len(changes)
    for indexes in by_spec.values():
        spec = changes[indexes[0]].spec
        if isinstance(spec, FlagSpec):
            now = flag_value(spec)
            for i in indexes:
                applied[i] = now == changes[i].value
            continue
        assert isinstance(spec, AllowlistSpec)
        ids = [changes[i].value for i in indexes]
        present = membership(spec, [i for i in ids if isinstance(i, bytes)])
        for i, there in zip(indexes, present, strict=True):
            applied[i] = there == (changes[i].action == "add")
    return applied


def _settle(change: Change, outcome: TxOutcome, applied: bool) -> Result:
    if applied:
        return Result(change, DONE[change.action], outcome.tx_hash)
    if outcome.status in ("failed", "reverted"):
        return Result(change, "failed", outcome.tx_hash, outcome.error)
    if outcome.status == "mined":
        return Result(change, "failed", outcome.tx_hash, "mined, but the chain now says otherwise (changed again?)")
    return Result(change, "pending", outcome.tx_hash, outcome.error)


def _subject(contract: Contract) -> str:
    return f"{contract.role} {contract.address}"
