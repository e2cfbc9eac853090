"""Plans for what an operator asks for one entry at a time (the allowlist commands and the dashboard's
buttons), with the warnings the signer must see."""

from __future__ import annotations

from collections.abc import Sequence

from warden.chain.allowlist import (
    allow_any_device_spec,
    compose_hash_spec,
    device_spec,
    flag_value,
    os_image_spec,
    reject_duplicates,
)
from warden.chain.app import AppAuth
from warden.chain.kms import KmsRegistry
from warden.changes.plan import Plan, plan_flag, plan_ids

Labelled = Sequence[tuple[bytes, str | None]]


def device_changes(app: AppAuth, devices: Labelled, *, add: bool) -> Plan:
    """Add (or remove) devices; with allowAnyDevice on, removing has no effect until it is turned off."""
    reject_duplicates([d for d, _ in devices], "device")
    plan = plan_ids(device_spec(app), devices, add=add)
    if not add and flag_value(allow_any_device_spec(app)):
        plan.notes.append(
            "allowAnyDevice is on, so removing devices has no practical effect until it is turned off "
            f"(warden allow-devices disallow-any {app.address})"
        )
    return plan


def compose_hash_changes(app: AppAuth, hashes: Labelled, *, add: bool) -> Plan:
    reject_duplicates([h for h, _ in hashes], "compose hash")
    return plan_ids(compose_hash_spec(app), hashes, add=add)


def os_image_changes(kms: KmsRegistry, images: Labelled, *, add: bool) -> Plan:
    reject_duplicates([i for i, _ in images], "OS image hash")
    return plan_ids(os_image_spec(kms), images, add=add)


def allow_any_device_change(app: AppAuth, enabled: bool | None) -> Plan:
    """Set allowAnyDevice to `enabled`, or (None) to the opposite of what the chain says now."""
    spec = allow_any_device_spec(app)
    wanted = (not flag_value(spec)) if enabled is None else enabled
    plan = plan_flag(spec, wanted)
    if wanted and plan.changes:
        plan.notes.append("with allowAnyDevice on, any node the KMS trusts can run this app; the list is ignored")
    return plan
