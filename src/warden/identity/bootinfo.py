"""BootInfo: everything the KMS asks the chain about, built from a verified quote and its event log.

The fields and their JSON form are those of dstack's auth webhook (camelCase, lowercase hex without
0x), so the same value can be posted to a dstack-compatible webhook or passed to `isAppAllowed`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.hexutil import parse_hex
from warden.identity.device import DeviceIdFormula, device_id
from warden.identity.eventlog import BOOT_END, Event, EventLogError, app_identity, replay
from warden.identity.quote import TdMeasurements, VerifiedQuote
from warden.jsonbody import JsonRefused, loads

TDX_VARIANT = "dstack-tdx"


@dataclass(frozen=True)
class BootInfo:
    tee_variant: str
    mr_aggregated: bytes
    os_image_hash: bytes
    mr_system: bytes
    app_id: bytes
    compose_hash: bytes
    instance_id: bytes
    device_id: bytes
    key_provider_info: bytes
    tcb_status: str
    advisory_ids: tuple[str, ...] = field(default_factory=tuple)

    def webhook_json(self) -> dict[str, Any]:
        """The request body of `POST /bootAuth/app` and `/bootAuth/kms`."""
        return {
            "teeVariant": self.tee_variant,
            "mrAggregated": self.mr_aggregated.hex(),
            "osImageHash": self.os_image_hash.hex(),
            "mrSystem": self.mr_system.hex(),
            "appId": self.app_id.hex(),
            "composeHash": self.compose_hash.hex(),
            "instanceId": self.instance_id.hex(),
            "deviceId": self.device_id.hex(),
            "keyProviderInfo": self.key_provider_info.hex(),
            "tcbStatus": self.tcb_status,
            "advisoryIds": list(self.advisory_ids),
        }


def mr_system(td: TdMeasurements, key_provider: bytes | None) -> bytes:
    """sha256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ mr_key_provider): the OS, independent of the app."""
    mr_key_provider = hashlib.sha256(key_provider).digest() if key_provider else bytes(32)
    return hashlib.sha256(td.mr_td + td.rt_mr0 + td.rt_mr1 + td.rt_mr2 + mr_key_provider).digest()


def mr_aggregated(td: TdMeasurements, rtmr3: bytes) -> bytes:
    """sha256(MRTD ‖ RTMR0..2 ‖ RTMR3), plus the config/owner fields only when any is set (as dstack does)."""
    data = td.mr_td + td.rt_mr0 + td.rt_mr1 + td.rt_mr2 + rtmr3
    extra = td.mr_config_id + td.mr_owner + td.mr_owner_config
    if any(extra):
        data += extra
    return hashlib.sha256(data).digest()


def build_boot_info(
    verified: VerifiedQuote,
    events: Sequence[Event],
    *,
    vm_config_os_image_hash: bytes | None = None,
    use_boottime_mr: bool = False,
    device_formula: DeviceIdFormula = "ppid",
) -> BootInfo:
    """BootInfo of a TDX guest; refuses an event log whose RTMR3 replay differs from the quote's.

    `use_boottime_mr` measures only up to `boot-mr-done` (a certificate request made at run time then
    reproduces the boot-time values); the key provider is then left out of mr_system, as dstack does.
    """
    td = verified.quote.td
    if td is None:
        raise EventLogError("BootInfo needs a TDX quote")
    replayed = replay(events, 3)
    if replayed != td.rt_mr3:
        raise EventLogError(
            f"event log does not match the quote: RTMR3 replays to {replayed.hex()[:16]}…, "
            f"the quote says {td.rt_mr3.hex()[:16]}…"
        )
    identity = app_identity(events)
    if identity.app_id is None or len(identity.app_id) != 20:
        raise EventLogError("event log has no 20-byte app-id event")
    if identity.compose_hash is None or len(identity.compose_hash) != 32:
        raise EventLogError("event log has no 32-byte compose-hash event")
    instance_id = identity.instance_id or b""
    if instance_id and len(instance_id) != 20:
        raise EventLogError("instance-id event must be 20 bytes (or empty)")
    rtmr3 = replay(events, 3, stop_after=BOOT_END) if use_boottime_mr else replayed
    key_provider = None if use_boottime_mr else identity.key_provider
    os_image_hash = vm_config_os_image_hash or identity.os_image_hash or bytes(32)
    return BootInfo(
        tee_variant=TDX_VARIANT,
        mr_aggregated=mr_aggregated(td, rtmr3),
        os_image_hash=os_image_hash,
        mr_system=mr_system(td, key_provider),
        app_id=identity.app_id,
        compose_hash=identity.compose_hash,
        instance_id=instance_id,
        device_id=device_id(verified.ppid, verified.quote.user_data, device_formula),
        key_provider_info=key_provider or b"",
        tcb_status=verified.tcb_status,
        advisory_ids=verified.advisory_ids,
    )


def os_image_hash_of_vm_config(vm_config: str | bytes | None) -> bytes | None:
    """The `os_image_hash` field of a dstack vm_config JSON document, if present."""
    if not vm_config:
        return None
    try:
        value = loads(vm_config).get("os_image_hash")
    except (JsonRefused, AttributeError):
        raise EventLogError("vm_config is not a JSON object") from None
    if not value:
        return None
    return parse_hex(str(value), "vm_config os_image_hash", error=EventLogError)
