"""app-compose.json: every field dstack knows, its type and default, and the exact bytes it was read from.

Parsing never changes what gets hashed: `Manifest.raw` is the input as given, and `Manifest.warnings` says what
about those bytes is surprising (a BOM, CRLF, a trailing newline, an editor's layout) without fixing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warden.compose.profiles import PROFILES, serialise
from warden.errors import BadInput

UTF8_BOM = b"\xef\xbb\xbf"
MAX_MANIFEST_VERSION = 3
REQUIRED = object()  # default of a field dstack refuses to boot without


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _one_of(*choices: str | int) -> Callable[[Any], bool]:
    return lambda value: not isinstance(value, bool) and value in choices


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type_name: str
    check: Callable[[Any], bool]
    default: Any
    note: str
    alias_of: str | None = None


def _spec(
    name: str, type_name: str, check: Callable[[Any], bool], default: Any, note: str, alias_of: str | None = None
) -> FieldSpec:
    return FieldSpec(name, type_name, check, default, note, alias_of)


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "manifest_version", "1, 2 or a string like \"3\"", lambda v: _is_int(v) or _is_str(v), REQUIRED,
            "format version; \"3\" needed for requirements, nerdctl-compose and several init scripts",
        ),
        _spec("name", "string", _is_str, REQUIRED, "app/instance name; part of the hash"),
        _spec("runner", "docker-compose, nerdctl-compose or bash", _is_str, REQUIRED, "how the app is started"),
        _spec("snapshotter", "overlayfs or stargz", _one_of("overlayfs", "stargz"), None, "nerdctl-compose only"),
        _spec("docker_compose_file", "string (YAML)", _is_str, None, "the compose YAML the runner starts"),
        _spec(
            "init_script", "string or list of ≤5 strings", lambda v: _is_str(v) or _is_str_list(v), None,
            "run before dockerd; each measured as init-script-hash",
        ),
        _spec("public_logs", "bool", _is_bool, False, "guest agent serves container logs publicly"),
        _spec("public_sysinfo", "bool", _is_bool, False, "guest agent serves sysinfo and metrics publicly"),
        _spec("public_tcbinfo", "bool", _is_bool, True, "guest agent serves tcb_info (raw app_compose, event log)"),
        _spec("kms_enabled", "bool", _is_bool, False, "legacy switch: key provider kms when key_provider is absent"),
        _spec("gateway_enabled", "bool", _is_bool, False, "register with dstack-gateway (public HTTPS ingress)"),
        _spec(
            "tproxy_enabled", "bool", _is_bool, False, "legacy input alias of gateway_enabled (ORed into it)",
            alias_of="gateway_enabled",
        ),
        _spec(
            "local_key_provider_enabled", "bool", _is_bool, False,
            "legacy switch: key provider local (SGX) when key_provider is absent",
        ),
        _spec(
            "key_provider", "none, kms, local or tpm", _one_of("none", "kms", "local", "tpm"), None,
            "explicit key provider; when absent derived from kms_enabled / local_key_provider_enabled",
        ),
        _spec("key_provider_id", "hex string", _is_str, "", "pins the key provider's id; boot fails on mismatch"),
        _spec("allowed_envs", "list of strings", _is_str_list, [], "env names accepted from .encrypted-env"),
        _spec("no_instance_id", "bool", _is_bool, False, "instance_id becomes empty"),
        _spec("secure_time", "bool", _is_bool, True, "boot waits for chrony to sync before disk setup"),
        _spec("storage_fs", "zfs or ext4", _one_of("zfs", "ext4"), None, "data disk filesystem (default zfs)"),
        _spec(
            "swap_size", "bytes or a size like \"1G\"", lambda v: _is_int(v) or _is_str(v), 0, "swap size (0: none)"
        ),
        _spec("event_log_version", "1 or 2", _one_of(1, 2), 1, "2: JCS-JSON event digests"),
        _spec("port_policy", "object", _is_object, None, "gateway PROXY-protocol opt-in / port whitelist"),
        _spec("requirements", "object", _is_object, None, "os_version, platforms, gpu_policy …; needs \"3\""),
        _spec("verity_volumes", "list of objects", _is_object_list, [], "dm-verity read-only volumes"),
        _spec(
            "features", "list of strings", _is_str_list, [],
            "deprecated: \"tproxy-net\" enables the gateway; \"kms\" alone selects no key provider",
        ),
        _spec(
            "pre_launch_script", "string", _is_str, None,
            "sourced before containers start (not in the Rust struct; measured only via the compose hash)",
        ),
        _spec("bash_script", "string", _is_str, None, "legacy: the script of runner bash"),
        _spec("docker_config", "object", _is_object, None, "removed since 0.5.5 (registry credentials)"),
    )
}  # fmt: skip

_CANONICAL_POSITIVE = re.compile(r"[1-9][0-9]*")


@dataclass(frozen=True)
class Manifest:
    """A parsed app-compose.json. `raw` is hashed; `fields` is what it says (unknown fields kept, in file order)."""

    raw: bytes
    fields: dict[str, Any]
    warnings: tuple[str, ...] = ()
    producer: str | None = None  # the profile whose output equals `raw` exactly, if any
    unknown: tuple[str, ...] = field(default=())

    def get(self, name: str) -> Any:
        """The field's value, or dstack's default when it is absent, null or of the wrong type."""
        spec = FIELDS.get(name)
        value = self.fields.get(name)
        if spec is None:
            return value
        if value is None or not spec.check(value):
            return None if spec.default is REQUIRED else spec.default
        return value

    def _bool(self, name: str) -> bool:
        return bool(self.get(name))

    @property
    def manifest_version(self) -> int | None:
        value = self.fields.get("manifest_version")
        return None if value is None else int(value)

    @property
    def name(self) -> str | None:
        value = self.get("name")
        return value if isinstance(value, str) else None

    @property
    def init_scripts(self) -> list[str]:
        value = self.get("init_script")
        if isinstance(value, str):
            return [value] if value else []
        return list(value) if isinstance(value, list) else []

    @property
    def features(self) -> list[str]:
        return list(self.get("features"))

    @property
    def allowed_envs(self) -> list[str]:
        return list(self.get("allowed_envs"))

    @property
    def gateway_enabled(self) -> bool:
        """As the guest reads it: gateway_enabled OR legacy tproxy_enabled OR features containing tproxy-net."""
        return self._bool("gateway_enabled") or self._bool("tproxy_enabled") or "tproxy-net" in self.features

    @property
    def kms_enabled(self) -> bool:
        return self._bool("kms_enabled")

    @property
    def local_key_provider_enabled(self) -> bool:
        return self._bool("local_key_provider_enabled")

    @property
    def key_provider(self) -> str:
        """Explicit key_provider, else kms if kms_enabled, else local if local_key_provider_enabled, else none."""
        explicit = self.get("key_provider")
        if isinstance(explicit, str):
            return explicit
        if self.kms_enabled:
            return "kms"
        return "local" if self.local_key_provider_enabled else "none"

    @property
    def key_provider_id(self) -> str:
        return str(self.get("key_provider_id"))

    @property
    def public_logs(self) -> bool:
        return self._bool("public_logs")

    @property
    def public_tcbinfo(self) -> bool:
        return self._bool("public_tcbinfo")

    @property
    def secure_time(self) -> bool:
        return self._bool("secure_time")

    @property
    def storage_fs(self) -> str:
        value = self.get("storage_fs")
        return value if isinstance(value, str) else "zfs"

    @property
    def swap_size(self) -> int | str:
        value = self.get("swap_size")
        return value if isinstance(value, int | str) else 0


def effective(manifest: Manifest, name: str) -> Any:
    """What the guest acts on for this field (defaults and legacy aliases resolved)."""
    resolved: dict[str, Callable[[Manifest], Any]] = {
        "gateway_enabled": lambda m: m.gateway_enabled,
        "tproxy_enabled": lambda m: m.gateway_enabled,
        "key_provider": lambda m: m.key_provider,
        "storage_fs": lambda m: m.storage_fs,
        "init_script": lambda m: m.init_scripts,
    }
    if name in resolved:
        return resolved[name](manifest)
    return manifest.get(name)


def load_manifest(raw: bytes) -> Manifest:
    """Parse app-compose.json bytes; BadInput when dstack could not read them, warnings for surprises."""
    warnings: list[str] = []
    body = raw
    if body.startswith(UTF8_BOM):
        warnings.append("starts with a UTF-8 BOM: it is part of the hashed bytes; no producer writes one")
        body = body[len(UTF8_BOM) :]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"manifest is not UTF-8 (byte {exc.start}): app-compose.json must be UTF-8 JSON") from None
    fields = _parse_object(text, warnings)
    _check_version(fields, warnings)
    unknown = tuple(name for name in fields if name not in FIELDS)
    for name, value in fields.items():
        spec = FIELDS.get(name)
        if spec is not None and value is not None and not spec.check(value):
            warnings.append(f"{name} should be {spec.type_name}, got {json.dumps(value)[:60]}: dstack may refuse it")
    for name in unknown:
        warnings.append(f"unknown field {name!r}: dstack ignores it, but it is part of the hashed bytes")
    if (
        "tproxy_enabled" in fields
        and "gateway_enabled" in fields
        and fields["tproxy_enabled"] != fields["gateway_enabled"]
    ):
        warnings.append("tproxy_enabled and gateway_enabled disagree: the guest ORs them (gateway on if either is)")
    producer = _producer_of(raw, fields)
    _layout_warnings(raw, text, producer, warnings)
    return Manifest(raw=raw, fields=fields, warnings=tuple(warnings), producer=producer, unknown=unknown)


def _parse_object(text: str, warnings: list[str]) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                warnings.append(f"duplicate key {key!r}: parsers disagree on which value wins (dstack refuses it)")
            result[key] = value
        return result

    def no_constants(name: str) -> Any:
        raise BadInput(f"manifest is not valid JSON: {name} is not a JSON value")

    decoder = json.JSONDecoder(object_pairs_hook=pairs, parse_constant=no_constants)
    start = len(text) - len(text.lstrip())
    if not text.strip():
        raise BadInput("manifest is empty: expected a JSON object")
    try:
        value, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise BadInput(f"manifest is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    rest = text[end:]
    if rest.strip():
        offset = len(text[: end + len(rest) - len(rest.lstrip())].encode())
        raise BadInput(
            f"trailing bytes after the JSON value at byte {offset}: "
            f"{rest.strip()[:20]!r} (one manifest per file, nothing after it)"
        )
    if not isinstance(value, dict):
        raise BadInput(f"manifest is valid JSON but not an object (got {type(value).__name__}): expected {{…}}")
    return value


def _check_version(fields: dict[str, Any], warnings: list[str]) -> None:
    if "manifest_version" not in fields:
        warnings.append("no manifest_version: dstack requires it and will refuse this manifest")
        return
    version = fields["manifest_version"]
    known = 'dstack knows 1, 2 (numbers) and "1" … "3" (strings)'
    if _is_int(version):
        if version in (1, 2):
            return
        if version >= MAX_MANIFEST_VERSION:
            raise BadInput(f'numeric manifest_version {version} is rejected by dstack: write the string "{version}"')
    elif isinstance(version, str) and _CANONICAL_POSITIVE.fullmatch(version) and int(version) <= MAX_MANIFEST_VERSION:
        return
    raise BadInput(f"unknown manifest_version {json.dumps(version)}: {known}")


def _producer_of(raw: bytes, fields: dict[str, Any]) -> str | None:
    for name in PROFILES:
        try:
            if serialise(fields, name) == raw:
                return name
        except BadInput:
            return None
    return None


def _layout_warnings(raw: bytes, text: str, producer: str | None, warnings: list[str]) -> None:
    if b"\r\n" in raw:
        warnings.append("CRLF line endings: the \\r bytes are hashed; a producer writes \\n (or one line)")
    tail = text[len(text.rstrip()) :]
    if tail in ("\n", "\r\n"):
        warnings.append("ends with a newline: no producer writes one, and the compose hash includes it")
    elif tail:
        warnings.append(f"trailing whitespace {tail!r} after the JSON: it is hashed")
    if text != text.lstrip():
        warnings.append("leading whitespace before the JSON: it is hashed")
    if producer is None and "\n" in text.strip():
        warnings.append(
            "multi-line layout that no known producer writes (dstack-vmm: indent 4, ': '; phala-cloud: indent 4, "
            "sorted, ':'): it looks re-serialised by an editor; hash the bytes that were actually deployed"
        )
