"""Devnet quotes through warden.identity: they verify under the devnet root and nowhere else, and
BootInfo carries the node's device id and the CVM's identity."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.support.cli import warden
from warden.identity.attestation import read_attestation
from warden.identity.bootinfo import build_boot_info, os_image_hash_of_vm_config
from warden.identity.eventlog import EventLogError, parse_event_log, runtime_event_digest
from warden.identity.quote import QuoteError, VerifiedQuote, verify_quote
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

APP_ID = bytes.fromhex("75537828f2ce51be7289709686a69cbfdbb714f1")
COMPOSE_HASH = hashlib.sha256(b'{"runner":"docker-compose"}').digest()
KEY_PROVIDER = b'{"name":"kms","id":"3059"}'


@pytest.fixture
def pki(tmp_path: Path) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path / "pki")


@pytest.fixture
def node(tmp_path: Path) -> SimNode:
    return SimNode.load_or_create(tmp_path / "prod6", "prod6", "us-east")


def boot(node: SimNode, pki: MockIntelPki) -> SimCvm:
    return SimCvm(
        node, pki, app_id=APP_ID, compose_hash=COMPOSE_HASH, instance_id=b"\x07" * 20,
        os_image_hash=b"\x14" * 32, key_provider=KEY_PROVIDER, storage_fs="zfs",
    )  # fmt: skip


def verified_report(cvm: SimCvm, pki: MockIntelPki, report_data: bytes = b"\x42" * 32) -> tuple[VerifiedQuote, str]:
    response = json.dumps(cvm.get_quote_response(report_data))
    attestation = read_attestation(response.encode())
    return verify_quote(attestation.quote, collateral_json(pki), int(time.time()), pki.root_ca_der), response


def test_devnet_quote_gives_boot_info_with_node_device_and_app_identity(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    verified, response = verified_report(cvm, pki)
    assert verified.tcb_status == "UpToDate" and verified.ppid == node.ppid
    report = json.loads(response)
    boot_info = build_boot_info(
        verified,
        parse_event_log(report["event_log"]),
        vm_config_os_image_hash=os_image_hash_of_vm_config(report["vm_config"]),
    )
    assert boot_info.device_id == hashlib.sha256(node.ppid).digest() == node.device_id
    assert (boot_info.app_id, boot_info.compose_hash, boot_info.instance_id) == (APP_ID, COMPOSE_HASH, b"\x07" * 20)
    assert boot_info.os_image_hash == b"\x14" * 32 and boot_info.key_provider_info == KEY_PROVIDER


def test_devnet_quote_is_refused_under_intel_root(node: SimNode, pki: MockIntelPki) -> None:
    quote = boot(node, pki).quote(b"\x01" * 32)
    with pytest.raises(QuoteError, match="does not verify"):
        verify_quote(quote, collateral_json(pki), int(time.time()))


def test_tampered_report_data_is_refused(node: SimNode, pki: MockIntelPki) -> None:
    quote = bytearray(boot(node, pki).quote(b"\x01" * 32))
    quote[48 + 520] ^= 0xFF  # first byte of report_data in the TD report body
    with pytest.raises(QuoteError, match="signature is invalid"):
        verify_quote(bytes(quote), collateral_json(pki), int(time.time()), pki.root_ca_der)


def test_a_rewritten_event_log_is_refused_by_boot_info(node: SimNode, pki: MockIntelPki) -> None:
    cvm = boot(node, pki)
    verified, response = verified_report(cvm, pki)
    log = json.loads(json.loads(response)["event_log"])
    for entry in log:
        if entry["event"] == "app-id":  # claim another app, with a self-consistent digest
            entry["event_payload"] = "11" * 20
            entry["digest"] = runtime_event_digest("app-id", b"\x11" * 20).hex()
    with pytest.raises(EventLogError, match="does not match the quote"):
        build_boot_info(verified, parse_event_log(log))


def test_firmware_update_changes_the_device_id_in_boot_info(node: SimNode, pki: MockIntelPki) -> None:
    before = node.device_id
    node.rotate_ppid()
    verified, response = verified_report(boot(node, pki), pki)
    boot_info = build_boot_info(verified, parse_event_log(json.loads(response)["event_log"]))
    assert boot_info.device_id == node.device_id != before


def test_outdated_tcb_is_reported(node: SimNode, pki: MockIntelPki) -> None:
    node.set_tcb("OutOfDate")
    verified, _ = verified_report(boot(node, pki), pki)
    assert verified.tcb_status == "OutOfDate" and verified.advisory_ids


def test_inspect_cli_verifies_a_devnet_report_with_the_devnet_root(
    node: SimNode, pki: MockIntelPki, tmp_path: Path
) -> None:
    report, collateral, root = tmp_path / "report.json", tmp_path / "collateral.json", tmp_path / "root.der"
    report.write_text(json.dumps(boot(node, pki).get_quote_response(b"\x05" * 32)))
    collateral.write_text(collateral_json(pki))
    root.write_bytes(pki.root_ca_der)
    run = warden(
        "attest", "inspect", "--quote", str(report), "--collateral", str(collateral), "--root-ca", str(root), "--json"
    )
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["verified"] and data["rtmr3_replayed"] and data["device_id"] == "0x" + node.device_id.hex()
    assert data["boot_info"]["appId"] == APP_ID.hex() and data["boot_info"]["deviceId"] == node.device_id.hex()
    refused = warden("attest", "inspect", "--quote", str(report), "--collateral", str(collateral))
    assert refused.exit_code == 2 and "does not verify" in refused.stderr
