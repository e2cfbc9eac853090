"""`warden attest inspect` and `warden attest device-id` on real samples, as files users hold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.identity.samples import GUEST_REPORT, SAMPLE_COLLATERAL, SAMPLE_PPID, SAMPLE_QUOTE, guest_report
from tests.support.cli import assert_clean_error, warden

SAMPLE_DEVICE_ID = "0x" + hashlib.sha256(SAMPLE_PPID).hexdigest()
SAMPLE_NOW = "2025-06-19T11:16:03Z"


def test_inspect_verified_sample_prints_design_json() -> None:
    run = warden(
        "attest", "inspect", "--quote", str(SAMPLE_QUOTE), "--collateral", str(SAMPLE_COLLATERAL),
        "--now", SAMPLE_NOW, "--json",
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert {"tee", "ppid", "device_id", "app_id", "compose_hash", "instance_id", "rtmr3_replayed"} <= set(data)
    assert data["tee"] == "tdx" and data["verified"] is True and data["tcb_status"] == "UpToDate"
    assert data["ppid"] == "0x" + SAMPLE_PPID.hex() and data["device_id"] == SAMPLE_DEVICE_ID
    assert data["rtmr3_replayed"] is None  # no event log given


def test_inspect_a_guest_report_replays_rtmr3_and_reads_the_app_identity() -> None:
    run = warden("attest", "inspect", "--quote", str(GUEST_REPORT), "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["rtmr3_replayed"] is True and data["verified"] is False
    assert data["app_id"] == "0x86b0e55f2fa8e4fb69d890f14f54d5612707646e"
    assert data["instance_id"] == "0x050bf89570575fe8fab4cb8f0a62a9e64efe8ead"
    assert data["key_provider"]["name"] == "kms"
    assert "not verified" in run.stderr


def test_a_separate_event_log_that_does_not_match_exits_1(tmp_path: Path) -> None:
    report = guest_report()
    quote = tmp_path / "quote.hex"
    quote.write_text(report["quote"])  # hex text form
    log = json.loads(report["event_log"])
    log.append({"imr": 3, "event_type": 134217729, "digest": "", "event": "extra", "event_payload": "00"})
    events = tmp_path / "events.json"
    events.write_text(json.dumps(log))
    run = warden("attest", "inspect", "--quote", str(quote), "--event-log", str(events), "--json")
    assert run.exit_code == 1
    assert run.json()["rtmr3_replayed"] is False
    human = warden("attest", "inspect", "--quote", str(quote), "--event-log", str(events))
    assert "DOES NOT match" in human.stdout


def test_device_id_from_ppid_and_from_quote() -> None:
    by_ppid = warden("attest", "device-id", "--ppid", SAMPLE_PPID.hex(), "--json")
    assert by_ppid.json() == {"ppid": "0x" + SAMPLE_PPID.hex(), "device_id": SAMPLE_DEVICE_ID, "formula": "ppid"}
    by_quote = warden("attest", "device-id", "--quote", str(SAMPLE_QUOTE))
    assert by_quote.stdout.strip() == SAMPLE_DEVICE_ID
    legacy = warden("attest", "device-id", "--quote", str(SAMPLE_QUOTE), "--legacy-device-id", "--json").json()
    assert legacy["formula"] == "legacy" and legacy["device_id"] != SAMPLE_DEVICE_ID


def test_bad_inputs_exit_2_with_clear_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01 not a quote")
    assert_clean_error(warden("attest", "inspect", "--quote", str(tmp_path / "missing")), 2, "does not exist")
    assert_clean_error(warden("attest", "inspect", "--quote", str(garbage)), 2, "not a valid quote")
    expired = warden("attest", "inspect", "--quote", str(SAMPLE_QUOTE), "--collateral", str(SAMPLE_COLLATERAL))
    assert_clean_error(expired, 2, "does not verify", "not valid at that time")
    bad_now = warden("attest", "inspect", "--quote", str(SAMPLE_QUOTE), "--collateral", str(SAMPLE_COLLATERAL),
                     "--now", "yesterday")  # fmt: skip
    assert_clean_error(bad_now, 2, "invalid --now")
    assert_clean_error(warden("attest", "device-id"), 2, "exactly one of --ppid and --quote")
    assert_clean_error(warden("attest", "device-id", "--ppid", "xyz"), 2, "not hex")


def test_a_ppid_must_be_exactly_16_bytes() -> None:
    for short_or_long in ("811dca2a", "0x811dca2a", SAMPLE_PPID.hex() + "00", ""):
        run = warden("attest", "device-id", "--ppid", short_or_long, "--json")
        assert_clean_error(run, 2, "invalid PPID", "expected 16 bytes" if short_or_long else "empty")
    with_prefix = warden("attest", "device-id", "--ppid", "0x" + SAMPLE_PPID.hex().upper(), "--json")
    assert with_prefix.json()["device_id"] == SAMPLE_DEVICE_ID
    assert_clean_error(warden("attest", "device-id", "--ppid", "ab", "--quote", str(SAMPLE_QUOTE)), 2, "exactly one")
