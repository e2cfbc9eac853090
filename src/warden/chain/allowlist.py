"""The on-chain settings warden changes: sets of 32-byte ids (devices, compose hashes, OS images) and the
allowAnyDevice flag, each with how to read it in batches and the calls that change it.

Writing them is `warden.changes`' job; this module only knows the contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from warden.chain.app import AppAuth
from warden.chain.contract import Contract
from warden.chain.history import read_history
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import LogCache
from warden.chain.tx import TxRequest
from warden.errors import BadInput

BATCH_SIZE = 500  # calls per JSON-RPC batch: large enough to be fast, small enough for public nodes

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


def flag_value(spec: FlagSpec, block: int | str = "latest") -> bool:
    return bool(spec.contract.call(spec.getter, block=block))
