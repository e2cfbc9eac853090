"""A Plan: the typed changes to apps' and KMS contracts' on-chain settings, each with what it changes and
why, beside the entries already as wanted (reported, never sent) and those on chain that nobody named."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warden.chain.allowlist import AllowlistSpec, FlagSpec, flag_value, membership
from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.inputs import hex0x
from warden.chain.tx import TxRequest

Action = Literal["add", "remove", "set"]
Spec = AllowlistSpec | FlagSpec

# how JSON names each kind's value and the label beside it (the documented `allow-devices` and
# `compose-hashes` result rows: device_id + node, compose_hash + source)
JSON_KEYS: dict[str, tuple[str, str]] = {
    "device": ("device_id", "node"),
    "compose-hash": ("compose_hash", "source"),
    "os-image": ("os_image_hash", "label"),
    "allow-any-device": ("allow_any_device", "label"),
}
NOUNS = {
    "device": "device",
    "compose-hash": "compose hash",
    "os-image": "OS image",
    "allow-any-device": "allowAnyDevice",
}


def value_text(value: bytes | bool) -> str:
    return hex0x(value) if isinstance(value, bytes) else ("on" if value else "off")


@dataclass(frozen=True)
class Entry:
    """One id of a set (or the flag's value) and how people know it (a node name, a file, a release)."""

    spec: Spec
    value: bytes | bool
    label: str | None = None

    @property
    def contract(self) -> Contract:
        return self.spec.contract

    @property
    def noun(self) -> str:
        return NOUNS[self.spec.kind]

    def describe(self) -> str:
        """`device 0x12…ab (prod6)`, `allowAnyDevice off`."""
        text = f"{self.noun} {value_text(self.value)}"
        return f"{text} ({self.label})" if self.label else text

    def json_fields(self) -> dict[str, Any]:
        key, label_key = JSON_KEYS[self.spec.kind]
        value: Any = hex0x(self.value) if isinstance(self.value, bytes) else self.value
        return {key: value, label_key: self.label}


@dataclass(frozen=True)
class Change(Entry):
    """A transaction to send: add or remove an id, or set the flag to `value`."""

    action: Action = "add"
    why: str = ""

    @property
    def kind(self) -> str:
        """add-device, remove-compose-hash, set-allow-any-device, add-os-image …"""
        return f"{self.action}-{self.spec.kind}"

    def request(self) -> TxRequest:
        spec = self.spec
        if isinstance(spec, FlagSpec):
            return spec.set(bool(self.value))
        assert isinstance(self.value, bytes)
        return (spec.add if self.action == "add" else spec.remove)(self.value)

    def title(self) -> str:
        """`add device 0x… (prod6)`, `turn allowAnyDevice off`."""
        if self.action == "set":
            return f"turn {self.describe()}"
        return f"{self.action} {self.describe()}"

    def as_json(self) -> dict[str, Any]:
        return {"change": self.kind, "contract": self.contract.address, **self.json_fields(), "why": self.why,
                "call": self.request().label}  # fmt: skip


@dataclass(frozen=True)
class Unchanged(Entry):
    """An entry already in the wanted state (`already-allowed`, `not-allowed`, `unchanged`), or one on chain
    that the request does not name (`not-named`: kept, unless pruning)."""

    state: str = "already-allowed"

    def as_json(self) -> dict[str, Any]:
        return {"contract": self.contract.address, **self.json_fields(), "status": self.state}


@dataclass
class Plan:
    """Entries in the order they were asked for; `changes` are the ones a transaction must make."""

    entries: list[Change | Unchanged] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings for the person who will sign

    @property
    def changes(self) -> list[Change]:
        return [e for e in self.entries if isinstance(e, Change)]

    @property
    def unchanged(self) -> list[Unchanged]:
        return [e for e in self.entries if isinstance(e, Unchanged)]

    @property
    def pending(self) -> bool:
        return bool(self.changes)

    def extend(self, other: Plan) -> Plan:
        self.entries.extend(other.entries)
        self.notes.extend(n for n in other.notes if n not in self.notes)
        return self

    def contracts(self) -> list[Contract]:
        """The contracts the changes touch, each once, in order."""
        seen: dict[str, Contract] = {}
        for change in self.changes:
            seen.setdefault(change.contract.address, change.contract)
        return list(seen.values())

    def chain(self) -> Chain | None:
        contracts = self.contracts()
        return contracts[0].chain if contracts else None

    def requests(self) -> list[TxRequest]:
        return [c.request() for c in self.changes]


def plan_ids(
    spec: AllowlistSpec, wanted: Sequence[tuple[bytes, str | None]], *, add: bool, why: str = "asked for"
) -> Plan:
    """Read the current membership of every id (batched); ids already in the wanted state are not sent."""
    present = membership(spec, [i for i, _ in wanted])
    entries: list[Change | Unchanged] = []
    for (value, label), now in zip(wanted, present, strict=True):
        if now == add:
            entries.append(Unchanged(spec, value, label, "already-allowed" if add else "not-allowed"))
        else:
            entries.append(Change(spec, value, label, "add" if add else "remove", why))
    return Plan(entries)


def plan_flag(spec: FlagSpec, wanted: bool, why: str = "asked for") -> Plan:
    """Set the flag unless it already has the wanted value."""
    if flag_value(spec) == wanted:
        return Plan([Unchanged(spec, wanted, None, "unchanged")])
    return Plan([Change(spec, wanted, None, "set", why)])


def plan_set(
    spec: AllowlistSpec,
    wanted: Sequence[tuple[bytes, str | None]],
    current: Iterable[tuple[bytes, str | None]],
    *,
    prune: bool,
    why: str = "named in the policy",
) -> Plan:
    """Make a set hold `wanted`: add what is missing; what is there but not wanted is removed only when
    pruning (otherwise shown as `not-named`)."""
    on_chain = dict(current)
    entries: list[Change | Unchanged] = []
    for value, label in wanted:
        if value in on_chain:
            entries.append(Unchanged(spec, value, label, "already-allowed"))
        else:
            entries.append(Change(spec, value, label, "add", why))
    named = {v for v, _ in wanted}
    for value, label in on_chain.items():
        if value in named:
            continue
        if prune:
            entries.append(Change(spec, value, label, "remove", "not in the policy (--prune)"))
        else:
            entries.append(Unchanged(spec, value, label, "not-named"))
    return Plan(entries)
