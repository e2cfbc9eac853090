"""Simulated CVMs: dstack's runtime events in RTMR3, quotes that carry them, GetQuote's answer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import dcap_qvl
import pytest

from warden.errors import BadInput
from warden.identity.eventlog import EventLogError, app_identity, parse_event_log, replay
from warden.tee.collateral import collateral
from warden.tee.cvm import SimCvm, image_measurements
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

APP_ID = bytes.fromhex("1234567890abcdef1234567890abcdef12345678")
COMPOSE_HASH = bytes(range(32))
INSTANCE_ID = b"\x11" * 20
OS_IMAGE_HASH = b"\x22" * 32
KEY_PROVIDER = json.dumps({"name": "kms", "id": "ab" * 32}).encode()
BOOT_ORDER = [
    "system-preparing",
    "app-id",
    "compose-hash",
    "instance-id",
    "boot-mr-done",
    "os-image-hash",
    "key-provider",
    "storage-fs",
    "system-ready",
]


@pytest.fixture
def pki(tmp_path: Path) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path / "pki")


@pytest.fixture
def node(tmp_path: Path) -> SimNode:
    return SimNode.load_or_create(tmp_path / "node", "node-1", "eu")


def boot(node: SimNode, pki: MockIntelPki, **changes: Any) -> SimCvm:
    args: dict[str, Any] = {
        "app_id": APP_ID,
        "compose_hash": COMPOSE_HASH,
        "instance_id": INSTANCE_ID,
        "os_image_hash": OS_IMAGE_HASH,
        "key_provider": KEY_PROVIDER,
        "storage_fs": "zfs",
    }
    return SimCvm(node, pki, **{**args, **changes})


def verify(pki: MockIntelPki, quote: bytes) -> Any:
    return dcap_qvl.verify_with_root_ca(quote, collateral(pki), pki.root_ca_der, int(time.time()))


def test_boot_events_in_dstack_order(node: SimNode, pki: MockIntelPki) -> None:
    events = boot(node, pki).event_log()
    assert [e.name for e in events] == BOOT_ORDER
    assert all(e.imr == 3 and e.is_runtime for e in events)
    payloads = {e.name: e.payload for e in events}
    assert payloads["system-preparing"] == payloads["boot-mr-done"] == payloads["system-ready"] == b""
    assert payloads["storage-fs"] == b"zfs"
    identity = app_identity(events)
    assert (identity.app_id, identity.compose_hash, identity.instance_id) == (APP_ID, COMPOSE_HASH, INSTANCE_ID)
    assert (identity.os_image_hash, identity.key_provider) == (OS_IMAGE_HASH, KEY_PROVIDER)
    assert "storage-fs" not in [e.name for e in boot(node, pki, storage_fs=None).event_log()]


def test_quote_verifies_and_rtmr3_is_the_replay(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    quote = cvm.quote(b"\xaa" * 64)
    report = verify(pki, quote)
    assert report.status == "UpToDate"
    assert bytes(report.ppid) == node.ppid
    td = dcap_qvl.parse_quote(quote).report
    assert bytes(td.rt_mr3) == replay(cvm.event_log()) == cvm.rt_mr3
    assert bytes(td.report_data) == b"\xaa" * 64
    m = image_measurements(OS_IMAGE_HASH)
    assert (bytes(td.mr_td), bytes(td.rt_mr0), bytes(td.rt_mr1), bytes(td.rt_mr2)) == (
        m.mr_td,
        m.rt_mr0,
        m.rt_mr1,
        m.rt_mr2,
    )


def test_tampered_payload_no_longer_replays(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    response = cvm.get_quote_response(b"nonce")
    quoted_rtmr3 = bytes(dcap_qvl.parse_quote(bytes.fromhex(response["quote"])).report.rt_mr3)
    log = json.loads(response["event_log"])
    compose = next(e for e in log if e["event"] == "compose-hash")
    compose["event_payload"] = "ff" * 32
    with pytest.raises(EventLogError):  # the recorded digest no longer matches the payload
        parse_event_log(json.dumps(log))
    compose["digest"] = ""  # a forger recomputes the digest instead: the replay then misses the quote
    assert replay(parse_event_log(json.dumps(log))) != quoted_rtmr3
    assert replay(parse_event_log(response["event_log"])) == quoted_rtmr3


def test_get_quote_response_shape(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    response = cvm.get_quote_response(b"hello")
    assert set(response) == {"quote", "event_log", "report_data", "vm_config"}
    assert response["report_data"] == b"hello".ljust(64, b"\x00").hex()
    assert json.loads(response["vm_config"])["os_image_hash"] == OS_IMAGE_HASH.hex()
    events = parse_event_log(response["event_log"])
    assert events == cvm.event_log()
    report = verify(pki, bytes.fromhex(response["quote"]))
    assert bytes(report.ppid) == node.ppid
    with pytest.raises(BadInput):
        cvm.get_quote_response(bytes(65))


def test_app_events_extend_rtmr3_but_not_identity(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    before = cvm.rt_mr3
    cvm.emit_event("compose-hash", b"\x99" * 32)  # an app cannot override its identity after system-ready
    assert cvm.rt_mr3 != before
    assert app_identity(cvm.event_log()).compose_hash == COMPOSE_HASH
    assert replay(cvm.event_log(), stop_after="system-ready") == before
    td = dcap_qvl.parse_quote(cvm.quote(b"")).report
    assert bytes(td.rt_mr3) == replay(cvm.event_log())
    with pytest.raises(BadInput):
        cvm.emit_event("", b"")


def test_image_measures_the_same_on_every_node(tmp_path: Path, pki: MockIntelPki) -> None:
    a = boot(SimNode.load_or_create(tmp_path / "a", "a", "r"), pki)
    b = boot(SimNode.load_or_create(tmp_path / "b", "b", "r"), pki)
    qa, qb = dcap_qvl.parse_quote(a.quote(b"")).report, dcap_qvl.parse_quote(b.quote(b"")).report
    assert bytes(qa.mr_td) == bytes(qb.mr_td) and bytes(qa.rt_mr3) == bytes(qb.rt_mr3)
    assert image_measurements(b"\x33" * 32) != image_measurements(OS_IMAGE_HASH)


def test_rotated_node_quotes_with_new_ppid(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    old = node.ppid
    node.rotate_ppid()
    report = verify(pki, cvm.quote(b"after upgrade"))
    assert bytes(report.ppid) == node.ppid != old


def test_devnet_restart(tmp_path: Path) -> None:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    cvm = boot(SimNode.load_or_create(tmp_path / "node", "node-1", "eu"), pki)
    root, ppid, rtmr3 = pki.root_ca_der, cvm.node.ppid, cvm.rt_mr3
    pki2 = MockIntelPki.load_or_create(tmp_path / "pki")
    cvm2 = boot(SimNode.load_or_create(tmp_path / "node", "node-1", "eu"), pki2)
    assert pki2.root_ca_der == root and cvm2.rt_mr3 == rtmr3
    report = dcap_qvl.verify_with_root_ca(cvm2.quote(b"x"), collateral(pki2), root, int(time.time()))
    assert bytes(report.ppid) == ppid


@pytest.mark.parametrize(
    "changes",
    [{"app_id": bytes(19)}, {"compose_hash": bytes(20)}, {"instance_id": bytes(5)}, {"os_image_hash": bytes(48)}],
)
def test_bad_identity_sizes(node: SimNode, pki: MockIntelPki, changes: dict[str, bytes]) -> None:
    with pytest.raises(BadInput):
        boot(node, pki, **changes)


def test_empty_instance_id_is_allowed(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki, instance_id=b"")
    assert app_identity(cvm.event_log()).instance_id == b""
    verify(pki, cvm.quote(b""))
