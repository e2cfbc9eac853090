"""Deployment paths as data: which fields a platform injects, overrides or drops, and how it writes the file.

One docker-compose.yaml deployed through N platforms gives N compose hashes (one docker_compose_hash); each must be
whitelisted on-chain. `matrix` predicts them. The shipped platforms reproduce the three deployments of a field
report (Phala Cloud via `phala deploy`, Phala Cloud via the provision API, a self-hosted dstack VMM).

A platform file (JSON list, {"platforms": [...]}, or TOML `[[platforms]]` tables) holds objects
{name, profile, description?, set?, drop?}; `set` values are written as given.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.compose.hashing import app_id_of, compose_hash, sub_hashes
from warden.compose.profiles import PROFILES, serialise
from warden.errors import BadInput

PLACEHOLDER_PRE_LAUNCH_SCRIPT = (
    "#!/bin/bash\n"
    "# PLACEHOLDER written by warden: Phala Cloud injects its own pre-launch script (about 12 KB: SSH keys,\n"
    "# Docker cleanup, ...). Its text is not available to warden, so compose hashes computed with this\n"
    "# placeholder will NOT match a real Phala Cloud deployment. Take the real manifest from the CVM's\n"
    "# attestation (tcb_info.app_compose) and hash that.\n"
)


@dataclass(frozen=True)
class Platform:
    name: str
    profile: str
    description: str = ""
    set: dict[str, Any] = field(default_factory=dict)  # fields injected or overridden, in this order
    drop: tuple[str, ...] = ()  # fields removed

    @property
    def uses_placeholder(self) -> bool:
        return self.set.get("pre_launch_script") == PLACEHOLDER_PRE_LAUNCH_SCRIPT

    def apply(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest this platform deploys, given the user's manifest fields."""
        result = {key: copy.deepcopy(value) for key, value in fields.items() if key not in self.drop}
        for key, value in self.set.items():
            result[key] = copy.deepcopy(value)
        return result

    def write(self, fields: Mapping[str, Any]) -> bytes:
        return serialise(self.apply(fields), self.profile)


def base_manifest(docker_compose_text: str, app_name: str) -> dict[str, Any]:
    """What the user brings: the compose YAML and a name (platforms add the rest)."""
    return {
        "manifest_version": 2,
        "name": app_name,
        "runner": "docker-compose",
        "docker_compose_file": docker_compose_text,
    }


_PHALA_COMMON: dict[str, Any] = {
    "gateway_enabled": True,
    "kms_enabled": True,
    "local_key_provider_enabled": False,
    "no_instance_id": False,
    "pre_launch_script": PLACEHOLDER_PRE_LAUNCH_SCRIPT,
    "public_logs": True,
    "public_sysinfo": True,
    "public_tcbinfo": True,
    "secure_time": False,
    "storage_fs": "zfs",
}

SHIPPED: tuple[Platform, ...] = (
    Platform(
        "phala-cli",
        "phala-cloud",
        "Phala Cloud via `phala deploy` (CLI): empty name, DSTACK_AUTHORIZED_KEYS allowed, tproxy-net feature, "
        "Phala's pre-launch script (placeholder here)",
        {
            **_PHALA_COMMON,
            "name": "",
            "allowed_envs": ["DSTACK_AUTHORIZED_KEYS"],
            "features": ["kms", "tproxy-net"],
            "tproxy_enabled": True,
        },
    ),
    Platform(
        "phala-api",
        "phala-cloud",
        "Phala Cloud via POST /cvms/provision + POST /cvms: keeps the app name, no env allowed, "
        "Phala's pre-launch script (placeholder here)",
        {**_PHALA_COMMON, "allowed_envs": [], "features": ["kms"], "tproxy_enabled": False},
    ),
    Platform(
        "selfhost-vmm",
        "dstack-vmm",
        'self-hosted dstack VMM (vmm-cli): passes the manifest through, adds key_provider_id "", gateway off',
        {
            "name": "",
            "kms_enabled": True,
            "gateway_enabled": False,
            "local_key_provider_enabled": False,
            "key_provider_id": "",
            "public_logs": True,
            "public_sysinfo": True,
            "allowed_envs": [],
            "no_instance_id": False,
            "secure_time": False,
        },
    ),
)


@dataclass(frozen=True)
class MatrixRow:
    platform: str
    profile: str
    compose_hash: bytes
    app_id: bytes
    docker_compose_hash: bytes | None
    manifest: bytes  # the exact bytes hashed
    placeholder: bool  # includes the placeholder pre-launch script: not a real deployment's hash


def matrix(docker_compose_text: str, app_name: str, platforms: Sequence[Platform] = SHIPPED) -> list[MatrixRow]:
    """One row per platform: the compose hash (and app_id, docker_compose_hash) of deploying this YAML there."""
    base = base_manifest(docker_compose_text, app_name)
    rows = []
    for platform in platforms:
        fields = platform.apply(base)
        raw = serialise(fields, platform.profile)
        digest = compose_hash(raw)
        rows.append(
            MatrixRow(
                platform=platform.name,
                profile=platform.profile,
                compose_hash=digest,
                app_id=app_id_of(digest),
                docker_compose_hash=sub_hashes(fields)["docker_compose_file"],
                manifest=raw,
                placeholder=platform.uses_placeholder,
            )
        )
    return rows


_PLATFORM_KEYS = {"name", "profile", "description", "set", "drop"}


def parse_platforms(raw: bytes, source: str = "platform file") -> list[Platform]:
    """Platforms from a JSON document, or else a TOML one."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{source} is not UTF-8") from None
    document: Any
    try:
        document = json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as toml_error:
            raise BadInput(
                f"{source} is neither valid JSON ({json_error.msg} at line {json_error.lineno}) "
                f"nor valid TOML ({toml_error})"
            ) from None
    if isinstance(document, dict):
        document = document.get("platforms")
    if not isinstance(document, list) or not document:
        raise BadInput(f'{source}: expected a non-empty list of platforms (JSON list, or "platforms" entries)')
    platforms = [_platform(entry, f"{source} entry {index + 1}") for index, entry in enumerate(document)]
    names = [platform.name for platform in platforms]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadInput(f"{source}: duplicate platform name(s) {', '.join(duplicates)}")
    return platforms


def _platform(entry: Any, where: str) -> Platform:
    if not isinstance(entry, dict):
        raise BadInput(f"{where}: expected an object {{name, profile, set, drop}}")
    extra = sorted(set(entry) - _PLATFORM_KEYS)
    if extra:
        raise BadInput(f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(_PLATFORM_KEYS))})")
    name, profile = entry.get("name"), entry.get("profile")
    if not isinstance(name, str) or not name:
        raise BadInput(f"{where}: name must be a non-empty string")
    if profile not in PROFILES:
        raise BadInput(f"{where} ({name}): profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    description = entry.get("description", "")
    set_fields = entry.get("set", {})
    drop = entry.get("drop", [])
    if not isinstance(description, str):
        raise BadInput(f"{where} ({name}): description must be a string")
    if not isinstance(set_fields, dict):
        raise BadInput(f"{where} ({name}): set must be an object of manifest fields")
    if not isinstance(drop, list) or not all(isinstance(item, str) for item in drop):
        raise BadInput(f"{where} ({name}): drop must be a list of field names")
    return Platform(name, str(profile), description, dict(set_fields), tuple(drop))


def platforms_document(platforms: Sequence[Platform] = SHIPPED) -> list[dict[str, Any]]:
    """Platforms as a JSON-ready list: the format `parse_platforms` reads (a start for users' own files)."""
    return [
        {"name": p.name, "profile": p.profile, "description": p.description, "set": p.set, "drop": list(p.drop)}
        for p in platforms
    ]
