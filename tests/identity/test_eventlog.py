"""Event logs: digests, RTMR replay and app identity, against a real dstack guest's quote and log."""

from __future__ import annotations

import json

import pytest

from tests.identity.samples import guest_report
from warden.identity.eventlog import (
    Event,
    EventLogError,
    app_identity,
    parse_event_log,
    replay,
    runtime_event,
    runtime_event_digest,
    runtime_event_digest_v2,
)
from warden.identity.quote import parse_quote, quote_bytes


def guest_events() -> list[Event]:
    return parse_event_log(guest_report()["event_log"])


def test_every_rtmr_of_a_real_guest_replays_to_its_quote() -> None:
    quote = parse_quote(quote_bytes(guest_report()["quote"].encode()))
    assert quote.td is not None
    events = guest_events()
    for index in range(4):
        assert replay(events, index) == quote.td.rtmr(index), f"RTMR{index}"


def test_app_identity_of_the_real_guest() -> None:
    identity = app_identity(guest_events())
    assert identity.app_id == bytes.fromhex("86b0e55f2fa8e4fb69d890f14f54d5612707646e")
    assert identity.compose_hash is not None and identity.compose_hash.hex().startswith("86b0e55f2fa8e4fb")
    assert identity.instance_id == bytes.fromhex("050bf89570575fe8fab4cb8f0a62a9e64efe8ead")
    assert identity.os_image_hash is not None and identity.os_image_hash.hex().startswith("07a2388c7a6a1b6a")
    assert identity.key_provider_json() is not None and identity.key_provider_json()["name"] == "kms"  # type: ignore[index]
    assert identity.storage_fs == "zfs"


def test_the_v1_digest_is_sha384_of_type_name_and_payload() -> None:
    import hashlib

    payload = bytes.fromhex("86b0e55f2fa8e4fb69d890f14f54d5612707646e")
    expected = hashlib.sha384(b"\x01\x00\x00\x08:app-id:" + payload).digest()
    assert runtime_event_digest("app-id", payload) == expected
    canonical = b'{"name":"compose-hash","payload":"abcd","type":134217729}'
    assert runtime_event_digest_v2("compose-hash", bytes.fromhex("abcd")) == hashlib.sha384(canonical).digest()


def test_a_tampered_payload_with_its_old_digest_is_refused() -> None:
    log = json.loads(guest_report()["event_log"])
    app_event = next(e for e in log if e["event"] == "app-id")
    app_event["digest"] = runtime_event_digest("app-id", bytes.fromhex(app_event["event_payload"])).hex()
    app_event["event_payload"] = "00" * 20
    with pytest.raises(EventLogError, match=r"app-id.*digest does not match"):
        parse_event_log(log)


def test_a_consistently_tampered_event_no_longer_replays_to_the_quote() -> None:
    quote = parse_quote(quote_bytes(guest_report()["quote"].encode()))
    events = [runtime_event("app-id", bytes(20)) if e.name == "app-id" else e for e in guest_events()]
    assert quote.td is not None and replay(events) != quote.td.rt_mr3


def test_events_after_system_ready_cannot_override_identity() -> None:
    events = [*guest_events(), runtime_event("app-id", b"\x11" * 20), runtime_event("compose-hash", b"\x22" * 32)]
    identity = app_identity(events)
    assert identity.app_id == bytes.fromhex("86b0e55f2fa8e4fb69d890f14f54d5612707646e")


def test_boot_time_replay_stops_at_boot_mr_done() -> None:
    events = guest_events()
    assert replay(events, 3, stop_after="boot-mr-done") != replay(events, 3)
    cut = next(i for i, e in enumerate(events) if e.name == "boot-mr-done")
    assert replay(events, 3, stop_after="boot-mr-done") == replay(events[: cut + 1], 3)


def test_blank_runtime_digests_are_computed() -> None:
    log = json.loads(guest_report()["event_log"])
    for entry in log:
        if entry["event_type"] == 0x08000001:
            entry["digest"] = ""
    assert replay(parse_event_log(log)) == replay(guest_events())


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ("{not json", "not JSON"),
        ('{"a": 1}', "must be a JSON list"),
        ("[1]", "expected an object"),
        ('[{"imr": 7, "event_type": 1, "digest": ""}]', "imr 7"),
        ('[{"imr": 0, "event_type": 1, "digest": "abcd"}]', "must be 48 bytes"),
        ('[{"imr": 3, "event_type": 134217729, "event": "x", "event_payload": "zz"}]', "not hex"),
        ('[{"imr": "three", "event_type": 1}]', "must be integers"),
    ],
)
def test_malformed_logs_say_what_is_wrong(log: str, message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        parse_event_log(log)
