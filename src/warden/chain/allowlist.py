"""The on-chain settings warden changes: sets of 32-byte ids (devices, compose hashes, OS images) and the
allowAnyDevice flag, each with how to read it in batches and the calls that change it.

Writing them is `warden.changes`' job; this module only knows the contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from warden.chain.app import AppAuth
from warden.chain.contract import Contract
from warden.chain.history import read_history, remember_limits
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import ScanCache
from warden.chain.tx import TxRequest
from warden.errors import BadInput

SetKind = Literal["device", "compose-hash", "os-image"]


@dataclass(frozen=True)
class AllowlistSpec:
    """How one contract exposes one set: its kind, the membership getter and the add/remove request builders."""

    contract: Contract
    kind: SetKind
    getter: str  # e.g. allowedDeviceIds
    add: Callable[[bytes], TxRequest]
    remove: Callable[[bytes], TxRequest]


@dataclass(frozen=True)
class FlagSpec:
    """A boolean setting of a contract (allowAnyDevice): its getter and the request that sets it."""

    contract: Contract
    kind: Literal["allow-any-device"]
    getter: str
    set: Callable[[bool], TxRequest]


def device_spec(app: AppAuth) -> AllowlistSpec:
    return AllowlistSpec(app, "device", "allowedDeviceIds", app.add_device, app.remove_device)


def compose_hash_spec(app: AppAuth) -> AllowlistSpec:
    return AllowlistSpec(app, "compose-hash", "allowedComposeHashes", app.add_compose_hash, app.remove_compose_hash)


def os_image_spec(kms: KmsRegistry) -> AllowlistSpec:
    return AllowlistSpec(kms, "os-image", "allowedOsImages", kms.add_os_image, kms.remove_os_image)


def allow_any_device_spec(app: AppAuth) -> FlagSpec:
    return FlagSpec(app, "allow-any-device", "allowAnyDevice", app.set_allow_any_device)


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
    cache: ScanCache | None = None,
    also: Sequence[tuple[str, Sequence[Any]]] = (),
) -> tuple[list[Member], int, list[Any]]:
    """Every id the contract's own `added_event`s name that is still in the set at the head, the head, and
    the answers of the `also` views of the same contract at that head (asked with the membership check).

    `events` are the event names read (the same list for a set's listing and its history shares one cache).
    """
    history = read_history(spec.contract, events, cache=cache)
    last_added: dict[bytes, tuple[int, str]] = {}
    for event in history.events:
        if event.event == added_event:
            last_added[bytes(event.args[arg])] = (event.block_number, event.tx_hash)
    ids = list(last_added)
    answers = spec.contract.call_many([*((spec.getter, (i,)) for i in ids), *also], block=history.head)
    remember_limits(spec.contract.chain, cache)
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    present = answers[: len(ids)]
    members = [Member(i, *last_added[i]) for i, ok in zip(ids, present, strict=True) if ok]
    return members, history.head, answers[len(ids) :]


def reject_duplicates(ids: Sequence[bytes], what: str) -> None:
    seen: set[bytes] = set()
    for item in ids:
        if item in seen:
            raise BadInput(f"{what} {hex0x(item)} is given twice")
        seen.add(item)


def membership(spec: AllowlistSpec, ids: Sequence[bytes], block: int | str = "latest") -> list[bool]:
    """Whether each id is currently in the set (Multicall3 where deployed, else batched calls)."""
    found: list[bool] = []
    for answer in spec.contract.call_many([(spec.getter, (i,)) for i in ids], block=block):
        if isinstance(answer, Exception):
            raise answer
        found.append(bool(answer))
    return found


def flag_value(spec: FlagSpec, block: int | str = "latest") -> bool:
    return bool(spec.contract.call(spec.getter, block=block))
