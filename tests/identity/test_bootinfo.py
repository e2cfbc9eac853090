"""BootInfo from a quote and its event log: dstack's formulas and the webhook's JSON shape."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.identity.samples import guest_report
from warden.identity.bootinfo import (
    build_boot_info,
    mr_aggregated,
    mr_system,
    os_image_hash_of_vm_config,
)
from warden.identity.eventlog import EventLogError, app_identity, parse_event_log, runtime_event
from warden.identity.quote import VerifiedQuote, parse_quote, quote_bytes


def guest() -> tuple[VerifiedQuote, list]:  # type: ignore[type-arg]
    report = guest_report()
    quote = parse_quote(quote_bytes(report["quote"].encode()))
    assert quote.ppid is not None
    # the guest's collateral is not kept: stand in a verification result for the quote's own PPID
    return VerifiedQuote(quote, "UpToDate", ("INTEL-SA-00837",), quote.ppid), parse_event_log(report["event_log"])


def test_boot_info_fields_follow_dstack_formulas() -> None:
    verified, events = guest()
    td = verified.quote.td
    assert td is not None
    vm_os_image = os_image_hash_of_vm_config(guest_report()["vm_config"])
    boot = build_boot_info(verified, events, vm_config_os_image_hash=vm_os_image)
    identity = app_identity(events)
    assert boot.app_id == identity.app_id and boot.compose_hash == identity.compose_hash
    assert boot.instance_id == identity.instance_id
    assert boot.device_id == hashlib.sha256(verified.ppid).digest()
    assert boot.os_image_hash == vm_os_image  # the host-supplied vm_config wins, as in dstack
    assert identity.key_provider is not None
    assert boot.key_provider_info == identity.key_provider
    mr_kp = hashlib.sha256(identity.key_provider).digest()
    assert boot.mr_system == hashlib.sha256(td.mr_td + td.rt_mr0 + td.rt_mr1 + td.rt_mr2 + mr_kp).digest()
    assert boot.mr_aggregated == mr_aggregated(td, td.rt_mr3)
    assert boot.tcb_status == "UpToDate" and boot.advisory_ids == ("INTEL-SA-00837",)


def test_mr_aggregated_appends_config_id_only_when_set() -> None:
    verified, _ = guest()
    td = verified.quote.td
    assert td is not None and any(td.mr_config_id)  # this guest pins its compose hash in mr_config_id
    base = td.mr_td + td.rt_mr0 + td.rt_mr1 + td.rt_mr2 + td.rt_mr3
    assert (
        mr_aggregated(td, td.rt_mr3)
        == hashlib.sha256(base + td.mr_config_id + td.mr_owner + td.mr_owner_config).digest()
    )
    from dataclasses import replace

    plain = replace(td, mr_config_id=bytes(48), mr_owner=bytes(48), mr_owner_config=bytes(48))
    assert mr_aggregated(plain, td.rt_mr3) == hashlib.sha256(base).digest()
    assert mr_system(plain, None) == hashlib.sha256(td.mr_td + td.rt_mr0 + td.rt_mr1 + td.rt_mr2 + bytes(32)).digest()


def test_boot_time_measurement_leaves_out_later_events_and_the_key_provider() -> None:
    verified, events = guest()
    runtime = build_boot_info(verified, events)
    boot_time = build_boot_info(verified, events, use_boottime_mr=True)
    assert boot_time.mr_aggregated != runtime.mr_aggregated
    assert boot_time.key_provider_info == b"" and boot_time.mr_system != runtime.mr_system
    assert boot_time.app_id == runtime.app_id


def test_a_log_that_does_not_replay_to_the_quote_is_refused() -> None:
    verified, events = guest()
    with pytest.raises(EventLogError, match="does not match the quote"):
        build_boot_info(verified, [*events, runtime_event("late", b"x")])


def test_legacy_device_id_formula() -> None:
    verified, events = guest()
    boot = build_boot_info(verified, events, device_formula="legacy")
    assert boot.device_id == hashlib.sha256(verified.quote.user_data).digest()


def test_webhook_json_is_camel_case_lowercase_hex_without_0x() -> None:
    verified, events = guest()
    body = build_boot_info(verified, events).webhook_json()
    assert list(body) == [
        "teeVariant", "mrAggregated", "osImageHash", "mrSystem", "appId", "composeHash", "instanceId", "deviceId",
        "keyProviderInfo", "tcbStatus", "advisoryIds",
    ]  # fmt: skip
    assert body["teeVariant"] == "dstack-tdx"
    for key in ("mrAggregated", "osImageHash", "mrSystem", "composeHash", "deviceId"):
        assert len(body[key]) == 64 and body[key] == body[key].lower() and not body[key].startswith("0x")
    assert len(body["appId"]) == 40 and len(body["instanceId"]) == 40
    json.dumps(body)


def test_vm_config_errors_are_clear() -> None:
    assert os_image_hash_of_vm_config(None) is None
    assert os_image_hash_of_vm_config('{"os_image_hash": "0xabcd"}') == bytes.fromhex("abcd")
    with pytest.raises(EventLogError, match="not a JSON object"):
        os_image_hash_of_vm_config("[1")
    with pytest.raises(EventLogError, match="not hex"):
        os_image_hash_of_vm_config('{"os_image_hash": "zz"}')
