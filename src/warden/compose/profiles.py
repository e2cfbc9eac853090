"""How each producer writes app-compose.json: the same manifest, different bytes, different compose hashes.

The guest hashes the file's exact bytes, so a verifier must hash what was deployed. These profiles only let you
predict, before deploying, which bytes a given producer will write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from warden.errors import BadInput


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    write: Callable[[Mapping[str, Any]], str]


def _sorted_recursively(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _sorted_recursively(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_recursively(item) for item in value]
    return value


def _dstack_sdk(fields: Mapping[str, Any]) -> str:
    # the Python SDK's AppCompose.to_dict() drops top-level None values before sorting
    kept = {key: value for key, value in fields.items() if value is not None}
    return json.dumps(_sorted_recursively(kept), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dstack_vmm(fields: Mapping[str, Any]) -> str:
    return json.dumps(dict(fields), indent=4, ensure_ascii=False, allow_nan=False)


def _phala_cloud(fields: Mapping[str, Any]) -> str:
    top_sorted = {key: fields[key] for key in sorted(fields)}
    return json.dumps(top_sorted, indent=4, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            "dstack-sdk",
            "dstack SDK get_compose_hash: keys sorted recursively, compact, UTF-8 unescaped, top-level nulls dropped",
            _dstack_sdk,
        ),
        Profile(
            "dstack-vmm",
            "dstack vmm-cli: indent 4, insertion order, ': ' after keys, UTF-8 unescaped, no trailing newline",
            _dstack_vmm,
        ),
        Profile(
            "phala-cloud",
            "Phala Cloud backend: top-level keys sorted, indent 4, no space after ':', UTF-8 unescaped",
            _phala_cloud,
        ),
    )
}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise BadInput(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


def serialise(fields: Mapping[str, Any], profile: str) -> bytes:
    """The bytes the named producer writes for these manifest fields (UTF-8, no trailing newline)."""
    writer = profile_named(profile).write
    try:
        return writer(fields).encode()
    except (TypeError, ValueError) as exc:
        raise BadInput(f"cannot serialise the manifest as {profile}: {exc}") from None
