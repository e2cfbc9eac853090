"""Preflight: would this exact manifest, on this node, get its keys? Asked of the chain before a deploy.

Each check says yes or no, why, and the command that fixes a no. When the KMS registry, the device and
the OS image are known, the last word is `DstackKms.isAppAllowed` itself, the call the KMS makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.chain.app import AppAuth, BootCheck
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.errors import BadInput

CSR_V2_SINCE = (0, 5, 6)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not checked (missing input) or only informative
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


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
        detail = "allowAnyDevice is on" if allow_any else "no --node or --device given: not checked"
        checks.append(Check("device", True if allow_any else None, detail))
    elif allow_any:
        checks.append(Check("device", True, f"allowAnyDevice is on: {device_ref} may boot"))
    else:
        ok = app.is_device_allowed(given.device_id)
        checks.append(Check(
            "device", ok, f"{device_ref} ({hex0x(given.device_id)}) is {'' if ok else 'NOT '}allowed",
            None if ok else f"warden allow-devices add {app.address} {device_ref} --wait"
            f"  (or: warden allow-devices allow-any {app.address} --enable)",
        ))  # fmt: skip

    if app.call("requireTcbUpToDate"):
        checks.append(Check("tcb", None, "the app requires TCB status UpToDate: an outdated node is refused"))

    if given.kms is not None:
        checks.extend(_registry_checks(given))
    if given.kms_meta is not None:
        checks.extend(_kms_checks(given))
    return checks


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
    if given.os_image_hash is not None:
        image_ok = kms.is_os_image_allowed(given.os_image_hash)
        checks.append(Check(
            "os image", image_ok, f"{hex0x(given.os_image_hash)} is {'' if image_ok else 'NOT '}allowed by the KMS",
            None if image_ok else f"warden kms os-image add {hex0x(given.os_image_hash)} --kms {kms.address} --wait",
        ))  # fmt: skip
        if given.device_id is not None:
            boot = BootCheck(app.address, given.compose_hash, given.device_id, os_image_hash=given.os_image_hash)
            allowed, reason = kms.is_app_allowed(boot)
            checks.append(Check("DstackKms.isAppAllowed", allowed, "allowed" if allowed else f"refused: {reason}"))
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
