"""dstack event logs: parse, check runtime-event digests, replay the RTMRs, read the app's identity.

A dstack guest records its identity as runtime events extended into RTMR3 (type 0x08000001):
`app-id`, `compose-hash`, `instance-id`, `key-provider`, `os-image-hash` … Each digest is
sha384(le32(type) ‖ ":" ‖ name ‖ ":" ‖ payload) (version 1), or sha384 of the canonical JSON
{"name","payload","type"} (version 2), and RTMR[i] = sha384(RTMR[i] ‖ digest) from 48 zero bytes.
Only events before `system-ready` describe the boot; anything an app emits later cannot override them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from warden.errors import BadInput
from warden.hexutil import parse_hex
from warden.jsonbody import JsonRefused, loads

RUNTIME_EVENT_TYPE = 0x08000001
RTMR_SIZE = 48
IDENTITY_END = "system-ready"
BOOT_END = "boot-mr-done"


class EventLogError(BadInput):
    """The event log is malformed or does not match what it claims."""


@dataclass(frozen=True)
class Event:
    imr: int
    event_type: int
    digest: bytes
    name: str
    payload: bytes

    @property
    def is_runtime(self) -> bool:
        return self.event_type == RUNTIME_EVENT_TYPE

    def as_json(self) -> dict[str, Any]:
        """The shape dstack's guest agent uses (hex without 0x)."""
        return {
            "imr": self.imr,
            "event_type": self.event_type,
            "digest": self.digest.hex(),
            "event": self.name,
            "event_payload": self.payload.hex(),
        }


def runtime_event_digest(name: str, payload: bytes) -> bytes:
    """Version-1 digest of a dstack runtime event."""
    data = RUNTIME_EVENT_TYPE.to_bytes(4, "little") + b":" + name.encode() + b":" + payload
    return hashlib.sha384(data).digest()


def runtime_event_digest_v2(name: str, payload: bytes) -> bytes:
    """Version-2 digest: sha384 of the canonical (sorted, compact) JSON of name, hex payload and type."""
    canonical = json.dumps(
        {"name": name, "payload": payload.hex(), "type": RUNTIME_EVENT_TYPE}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha384(canonical.encode()).digest()


def runtime_event(name: str, payload: bytes) -> Event:
    """A new RTMR3 runtime event with its version-1 digest (what a simulated guest emits)."""
    return Event(3, RUNTIME_EVENT_TYPE, runtime_event_digest(name, payload), name, payload)


def extend(register: bytes, digest: bytes) -> bytes:
    return hashlib.sha384(register + digest).digest()


def replay(events: Sequence[Event], imr: int = 3, stop_after: str | None = None) -> bytes:
    """The value of RTMR[imr] after the given events (optionally only up to and including `stop_after`)."""
    register = bytes(RTMR_SIZE)
    for event in events:
        if event.imr != imr:
            continue
        register = extend(register, event.digest)
        if stop_after is not None and event.name == stop_after:
            break
    return register


def parse_event_log(data: Any) -> list[Event]:
    """Accept the list dstack's guest returns, or that list as a JSON string; check every runtime digest.

    A runtime event with an empty digest gets its digest computed from name and payload (some
    producers leave it blank); one whose digest matches neither version is refused.
    """
    if isinstance(data, bytes | str):
        try:
            data = loads(data)  # from the requester: nesting bounded before decoding
        except JsonRefused as exc:
            raise EventLogError(f"event log is {exc}") from None
    if not isinstance(data, list):
        raise EventLogError("event log must be a JSON list of events")
    events = []
    for i, entry in enumerate(data):
        where = f"event {i}"
        if not isinstance(entry, dict):
            raise EventLogError(f"{where}: expected an object")
        try:
            imr = int(entry.get("imr", -1))
            event_type = int(entry.get("event_type", 0))
        except (TypeError, ValueError):
            raise EventLogError(f"{where}: imr and event_type must be integers") from None
        if not 0 <= imr <= 3:
            raise EventLogError(f"{where}: imr {imr} is not 0..3")
        name = entry.get("event", "")
        if not isinstance(name, str):
            raise EventLogError(f"{where}: event name must be text")
        payload = _hex_field(entry.get("event_payload", ""), f"{where} ({name}) payload")
        digest = _hex_field(entry.get("digest", ""), f"{where} ({name}) digest")
        if event_type == RUNTIME_EVENT_TYPE:
            if not digest:
                v2 = entry.get("version") == 2
                digest = runtime_event_digest_v2(name, payload) if v2 else runtime_event_digest(name, payload)
            elif digest != runtime_event_digest(name, payload) and digest != runtime_event_digest_v2(name, payload):
                raise EventLogError(f"{where} ({name}): digest does not match its name and payload")
        elif len(digest) != RTMR_SIZE:
            raise EventLogError(f"{where}: digest must be {RTMR_SIZE} bytes, got {len(digest)}")
        events.append(Event(imr, event_type, digest, name, payload))
    return events


@dataclass(frozen=True)
class AppIdentity:
    """What the runtime events say about the app (before `system-ready`)."""

    app_id: bytes | None
    compose_hash: bytes | None
    instance_id: bytes | None
    key_provider: bytes | None  # the raw payload, JSON text {"name": …, "id": …}
    os_image_hash: bytes | None
    storage_fs: str | None

    def key_provider_json(self) -> dict[str, Any] | None:
        if not self.key_provider:
            return None
        try:
            value = loads(self.key_provider)
        except JsonRefused:
            return None
        return value if isinstance(value, dict) else None


def app_identity(events: Sequence[Event]) -> AppIdentity:
    """The first value of each identity event in RTMR3, ignoring everything after `system-ready`."""
    found: dict[str, bytes] = {}
    for event in events:
        if event.imr != 3 or not event.is_runtime:
            continue
        if event.name == IDENTITY_END:
            break
        found.setdefault(event.name, event.payload)
    storage = found.get("storage-fs")
    return AppIdentity(
        app_id=found.get("app-id"),
        compose_hash=found.get("compose-hash"),
        instance_id=found.get("instance-id"),
        key_provider=found.get("key-provider"),
        os_image_hash=found.get("os-image-hash"),
        storage_fs=storage.decode(errors="replace") if storage is not None else None,
    )


def _hex_field(value: Any, what: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise EventLogError(f"{what}: expected hex text")
    return parse_hex(value, what, error=EventLogError)
