"""Preflight: would this exact manifest, on this node, get its keys? Asked of the chain before a deploy.

Each check says yes or no, why, and the command that fixes a no. When the KMS registry, the device and
the OS image are known, the last word is `DstackKms.isAppAllowed` itself, the call the KMS makes. A check
that cannot run (no KMS known, no device, no OS image) is listed as skipped, with the flag that lets it
run: a preflight with a skipped check is undecided, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from warden.chain.app import AppAuth, BootCheck
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.errors import BadInput

CSR_V2_SINCE = (0, 5, 6)
KMS_ENABLE = "--kms ADDR (or WARDEN_KMS)"
DEVICE_ENABLE = "--node NAME (with --nodes-file) or --device HEX"
OS_IMAGE_ENABLE = "--os-image HASH"

CheckStatus = Literal["ok", "failed", "skipped", "info"]
Decision = Literal["allowed", "refused", "undecided"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped (could not run) or only informative
    detail: str  # for a skipped check: why it could not run
    fix: str | None = None
    enable: str | None = None  # a skipped check: the flag or environment variable that lets it run
    skipped: bool = False

    @property
    def status(self) -> CheckStatus:
        if self.skipped:
            return "skipped"
        if self.ok is None:
            return "info"
        return "ok" if self.ok else "failed"

    @property
    def mark(self) -> str:
        return {"ok": "yes", "failed": "NO", "skipped": "SKIPPED", "info": "-"}[self.status]

    def as_json(self) -> dict[str, Any]:
        data = {"name": self.name, "check": self.name, "status": self.status, "ok": self.ok,
                "reason": self.detail, "detail": self.detail, "fix": self.fix}  # fmt: skip
        if self.enable:
            data["enable"] = self.enable
        return data


def skipped(name: str, reason: str, enable: str) -> Check:
    return Check(name, None, reason, enable=enable, skipped=True)


def decision(checks: list[Check]) -> Decision:
    """refused if any check fails, else undecided if any could not run, else allowed."""
    if any(c.ok is False for c in checks):
        return "refused"
    if any(c.skipped for c in checks):
        return "undecided"
    return "allowed"


def skipped_summary(checks: list[Check]) -> str:
    """Which checks could not run and what lets each run, one per line."""
    return "\n".join(f"  {c.name}: {c.detail}; enable with {c.enable}" for c in checks if c.skipped)


@dataclass(frozen=True)
class PreflightInput:
    app: AppAuth
    compose_hash: bytes
    device_id: bytes | None = None
    node: str | None = None
    kms: KmsRegistry | None = None
    os_image_hash: bytes | None = None
    gateway_enabled: bool = False
    kms_meta: dict[str, Any] | None = None  # GetMeta of the KMS the CVM will ask
    guest_version: str | None = None
    # the OS image and DstackKms.isAppAllowed checks: off for a replica, which boots its source's image
    image_checks: bool = True


def preflight(given: PreflightInput) -> list[Check]:
    app = given.app
    checks: list[Check] = []
    device_ref = given.node or (hex0x(given.device_id) if given.device_id else "DEVICE")

    allowed_hash = app.is_compose_hash_allowed(given.compose_hash)
    checks.append(Check(
        "compose hash", allowed_hash,
        f"{hex0x(given.compose_hash)} is {'' if allowed_hash else 'NOT '}allowed",
        None if allowed_hash else f"warden compose-hashes add {app.address} {hex0x(given.compose_hash)} --wait",
    ))  # fmt: skip

    allow_any = app.allow_any_device()
    if given.device_id is None:
        if allow_any:
            checks.append(Check("device", True, "allowAnyDevice is on"))
        else:
            checks.append(skipped("device", "no target node or device given", DEVICE_ENABLE))
    elif allow_any:
        checks.append(Check("device", True, f"allowAnyDevice is on: {device_ref} may boot"))
    else:
        ok = app.is_device_allowed(given.device_id)
        checks.append(Check(
            "device", ok, f"{_device_label(given)} is {'' if ok else 'NOT '}allowed",
            None if ok else f"warden allow-devices add {app.address} {device_ref} --wait"
            f"  (or: warden allow-devices allow-any {app.address} --enable)",
        ))  # fmt: skip

    if app.call("requireTcbUpToDate"):
        checks.append(Check("tcb", None, "the app requires TCB status UpToDate: an outdated node is refused"))

    if given.kms is not None:
        checks.extend(_registry_checks(given))
    else:
        why = "no DstackKms known (no --kms, WARDEN_KMS, KMS_CONTRACT_ADDR or devnet)"
        checks.append(skipped("registered", why, KMS_ENABLE))
        if given.image_checks:
            image_needs = [KMS_ENABLE] + ([OS_IMAGE_ENABLE] if given.os_image_hash is None else [])
            checks.append(skipped("os image", why, " + ".join(image_needs)))
            checks.append(skipped("DstackKms.isAppAllowed", why, _allowed_enable(given)))
    if given.kms_meta is not None:
        checks.extend(_kms_checks(given))
    elif given.guest_version:
        checks.append(skipped("certificate", "no KMS URL given to ask for its CSR API versions", "--kms-url URL"))
    return checks


def _device_label(given: PreflightInput) -> str:
    """`node (0x…)`, or the device id alone when no node name was given."""
    device = hex0x(given.device_id) if given.device_id else "DEVICE"
    return f"{given.node} ({device})" if given.node else device


def _allowed_enable(given: PreflightInput) -> str:
    """The flags DstackKms.isAppAllowed still needs."""
    missing = [KMS_ENABLE] if given.kms is None else []
    missing += [DEVICE_ENABLE] if given.device_id is None else []
    missing += [OS_IMAGE_ENABLE] if given.os_image_hash is None else []
    return " + ".join(missing)


def _registry_checks(given: PreflightInput) -> list[Check]:
    kms, app = given.kms, given.app
    assert kms is not None
    checks = []
    registered = kms.is_app_registered(app.address)
    checks.append(Check(
        "registered", registered,
        f"app is {'' if registered else 'NOT '}registered with DstackKms {kms.address}",
        None if registered else f"call DstackKms({kms.address}).registerApp({app.address}) (anyone may)",
    ))  # fmt: skip
    if not given.image_checks:
        return checks
    if given.os_image_hash is None:
        why = "no OS image hash given"
        checks.append(skipped("os image", why, OS_IMAGE_ENABLE))
        checks.append(skipped("DstackKms.isAppAllowed", why, _allowed_enable(given)))
    else:
        image_ok = kms.is_os_image_allowed(given.os_image_hash)
        checks.append(Check(
            "os image", image_ok, f"{hex0x(given.os_image_hash)} is {'' if image_ok else 'NOT '}allowed by the KMS",
            None if image_ok else f"warden kms os-image add {hex0x(given.os_image_hash)} --kms {kms.address} --wait",
        ))  # fmt: skip
        if given.device_id is not None:
            boot = BootCheck(app.address, given.compose_hash, given.device_id, os_image_hash=given.os_image_hash)
            allowed, reason = kms.is_app_allowed(boot)
            checks.append(Check("DstackKms.isAppAllowed", allowed, "allowed" if allowed else f"refused: {reason}"))
        else:
            checks.append(skipped("DstackKms.isAppAllowed", "no target node or device given", _allowed_enable(given)))
    return checks


def _kms_checks(given: PreflightInput) -> list[Check]:
    meta, app = given.kms_meta or {}, given.app
    checks = []
    same_chain = meta.get("chain_id") == app.chain.chain_id
    wanted = given.kms.address if given.kms else None
    same_contract = wanted is None or str(meta.get("kms_contract_address", "")).lower() == wanted.lower()
    ok = same_chain and same_contract
    checks.append(Check(
        "kms chain", ok,
        f"the KMS serves chain {meta.get('chain_id')} contract {meta.get('kms_contract_address')}; the app is on "
        f"chain {app.chain.chain_id}" + (f" under {wanted}" if wanted else ""),
        None if ok else "point the CVM at a KMS of the app's chain and DstackKms (its app id is not known elsewhere)",
    ))  # fmt: skip
    if given.guest_version:
        version = 2 if _version(given.guest_version) >= CSR_V2_SINCE else 1
        supported = [int(v) for v in meta.get("supported_csr_api_versions", [1])]
        if version in supported:
            checks.append(
                Check("certificate", True, f"guest {given.guest_version} sends CSR v{version}; the KMS accepts it")
            )
        else:
            detail = (f"guest {given.guest_version} sends CSR v{version}, the KMS accepts {supported}: "
                      "keys work, the gateway certificate does not")  # fmt: skip
            checks.append(Check(
                "certificate", False if given.gateway_enabled else None, detail,
                "use a KMS ≥ 0.5.6, a guest that falls back to CSR v1, or set gateway_enabled false",
            ))  # fmt: skip
    return checks


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.lstrip("v").split(".")[:3])
    except ValueError:
        raise BadInput(f"invalid --guest-version {text!r}: expected like 0.5.7") from None
