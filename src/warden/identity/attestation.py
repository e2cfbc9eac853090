"""An attestation as operators hold it (a quote file, hex text, or the JSON report a dstack guest returns)
and what `warden attest inspect` says about it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from warden.identity.bootinfo import build_boot_info, mr_aggregated, mr_system, os_image_hash_of_vm_config
from warden.identity.device import DeviceIdFormula, device_id
from warden.identity.eventlog import Event, EventLogError, app_identity, parse_event_log, replay
from warden.identity.quote import QuoteError, VerifiedQuote, parse_quote, quote_bytes, verify_quote
from warden.jsonbody import JsonRefused, loads


@dataclass(frozen=True)
class Attestation:
    quote: bytes
    events: list[Event] | None
    vm_config: str | None


def read_attestation(quote_data: bytes, event_log_data: bytes | None = None) -> Attestation:
    """`quote_data` is a binary quote, hex text, or a JSON object with `quote` (hex) and optionally
    `event_log` (list or JSON string) and `vm_config`; a separate event log file overrides the embedded one."""
    events = None
    vm_config = None
    if quote_data.lstrip()[:1] == b"{":
        try:
            report = loads(quote_data)
        except JsonRefused as exc:
            raise QuoteError(f"attestation report is {exc}") from None
        if not isinstance(report.get("quote"), str):
            raise QuoteError("attestation report has no `quote` (hex text)")
        raw = quote_bytes(report["quote"].encode())
        if report.get("event_log") not in (None, "", []):
            events = parse_event_log(report["event_log"])
        config = report.get("vm_config")
        vm_config = json.dumps(config) if isinstance(config, dict) else config if isinstance(config, str) else None
    else:
        raw = quote_bytes(quote_data)
    if event_log_data is not None:
        events = parse_event_log(event_log_data)
    return Attestation(raw, events, vm_config)


def inspect(
    attestation: Attestation,
    *,
    collateral: Any = None,
    now: int | None = None,
    root_ca_der: bytes | None = None,
    device_formula: DeviceIdFormula = "ppid",
) -> dict[str, Any]:
    """Everything an operator wants to know about one attestation; verified only when collateral is given."""
    quote = parse_quote(attestation.quote)
    verified: VerifiedQuote | None = None
    if collateral is not None:
        if now is None:
            raise QuoteError("verifying needs a time (`now`)")
        verified = verify_quote(attestation.quote, collateral, now, root_ca_der)
    ppid = verified.ppid if verified else quote.ppid
    out: dict[str, Any] = {
        "tee": quote.tee,
        "quote_version": quote.version,
        "verified": verified is not None,
        "tcb_status": verified.tcb_status if verified else None,
        "advisory_ids": list(verified.advisory_ids) if verified else None,
        "fmspc": quote.fmspc,
        "ppid": _hex(ppid),
        "device_id": _hex(device_id(ppid, quote.user_data, device_formula)) if ppid else None,
        "device_id_formula": device_formula,
        "app_id": None,
        "compose_hash": None,
        "instance_id": None,
        "os_image_hash": None,
        "key_provider": None,
        "rtmr3_replayed": None,
        "events": None,
    }
    td = quote.td
    if td is not None:
        out |= {
            "mr_td": _hex(td.mr_td),
            "rtmr0": _hex(td.rt_mr0),
            "rtmr1": _hex(td.rt_mr1),
            "rtmr2": _hex(td.rt_mr2),
            "rtmr3": _hex(td.rt_mr3),
            "report_data": _hex(td.report_data),
            "mr_config_id": _hex(td.mr_config_id),
        }
    events = attestation.events
    if events is not None and td is not None:
        identity = app_identity(events)
        replay_ok = replay(events, 3) == td.rt_mr3
        out |= {
            "app_id": _hex(identity.app_id),
            "compose_hash": _hex(identity.compose_hash),
            "instance_id": _hex(identity.instance_id),
            "os_image_hash": _hex(os_image_hash_of_vm_config(attestation.vm_config) or identity.os_image_hash),
            "key_provider": identity.key_provider_json(),
            "rtmr3_replayed": replay_ok,
            "events": len(events),
            "mr_system": _hex(mr_system(td, identity.key_provider)),
            "mr_aggregated": _hex(mr_aggregated(td, td.rt_mr3)),
        }
        if verified is not None and replay_ok:
            try:
                boot = build_boot_info(
                    verified,
                    events,
                    vm_config_os_image_hash=os_image_hash_of_vm_config(attestation.vm_config),
                    device_formula=device_formula,
                )
                out["boot_info"] = boot.webhook_json()
            except EventLogError as exc:
                out["boot_info_error"] = str(exc)
    return out


def _hex(value: bytes | None) -> str | None:
    return "0x" + value.hex() if value is not None else None
