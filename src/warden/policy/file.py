"""Read a policy file (TOML, or JSON of the same shape) into typed tables; nothing is resolved here.

[apps.shared-key-demo]
address = "0x7553…"            # or app_id = "app_…", or name = "…" / cvm = "…" (through the control plane);
                               # with none of them, the table's own name is looked up as an app name
allow_any_device = false       # each setting is optional: what a policy leaves out is not managed
devices = ["prod5", "prod6", "0x…"]
compose_hashes = ["0x…", "releases/v2.json"]

[kms]
address = "0x…"                # optional: else --kms, WARDEN_KMS, the profile's or the devnet's
os_images = ["0x…"]
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.errors import BadInput

APP_KEYS = {"address", "app_id", "name", "cvm", "allow_any_device", "devices", "compose_hashes"}
KMS_KEYS = {"address", "os_images"}
REFERENCE_KEYS = ("address", "app_id", "name", "cvm")


@dataclass(frozen=True)
class AppPolicy:
    name: str  # the table's name: how plans and reports call the app
    reference: str  # the address, app_ id, app name or CVM that finds it
    reference_kind: str  # address | app_id | name | cvm
    allow_any_device: bool | None
    devices: list[str] | None
    compose_hashes: list[str] | None


@dataclass(frozen=True)
class KmsPolicy:
    address: str | None
    os_images: list[str] | None


@dataclass(frozen=True)
class PolicyFile:
    path: Path
    apps: list[AppPolicy]
    kms: KmsPolicy | None

    @property
    def base(self) -> Path:
        """Files named in the policy (app-compose manifests, matrix outputs) are relative to it."""
        return self.path.parent


def read_policy(path: Path) -> PolicyFile:
    """Parse and check the shape; every mistake is bad input naming the file and the table."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read policy {path}: {exc.strerror}") from None
    data = _parse(path, raw)
    unknown = sorted(set(data) - {"apps", "kms"})
    if unknown:
        raise BadInput(f"{path}: unknown table(s) {', '.join(unknown)} (a policy has [apps.NAME] and [kms])")
    apps_table = data.get("apps", {})
    if not isinstance(apps_table, dict):
        raise BadInput(f"{path}: `apps` must be tables, one per app: [apps.NAME]")
    apps = [_app(path, name, table) for name, table in apps_table.items()]
    kms = _kms(path, data["kms"]) if "kms" in data else None
    if not apps and kms is None:
        raise BadInput(f"{path} names no app ([apps.NAME]) and no [kms]: nothing to plan")
    return PolicyFile(path, apps, kms)


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise BadInput(f"{path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a policy is a table with [apps.NAME] and [kms]")
    return data


def _app(path: Path, name: str, table: Any) -> AppPolicy:
    where = f"{path} [apps.{name}]"
    _check_table(table, APP_KEYS, where)
    given = [k for k in REFERENCE_KEYS if k in table]
    if len(given) > 1:
        choices = ", ".join(REFERENCE_KEYS)
        raise BadInput(f"{where}: name the app once, with one of {choices} (not {' and '.join(given)})")
    kind = given[0] if given else "name"
    reference = table.get(kind, name)
    if not isinstance(reference, str) or not reference.strip():
        raise BadInput(f"{where}: {kind} must be a non-empty string")
    allow_any = table.get("allow_any_device")
    if allow_any is not None and not isinstance(allow_any, bool):
        raise BadInput(f"{where}: allow_any_device must be true or false")
    return AppPolicy(name, reference.strip(), kind, allow_any, _strings(table, "devices", where),
                     _strings(table, "compose_hashes", where))  # fmt: skip


def _kms(path: Path, table: Any) -> KmsPolicy:
    where = f"{path} [kms]"
    _check_table(table, KMS_KEYS, where)
    address = table.get("address")
    if address is not None and not isinstance(address, str):
        raise BadInput(f"{where}: address must be a string")
    return KmsPolicy(address, _strings(table, "os_images", where))


def _check_table(table: Any, known: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise BadInput(f"{where} must be a table")
    unknown = sorted(set(table) - known)
    if unknown:
        raise BadInput(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def _strings(table: dict[str, Any], key: str, where: str) -> list[str] | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where}: {key} must be a list of strings")
    return [v.strip() for v in value]
