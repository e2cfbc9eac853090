"""compose_hash, app_id and the sub-hashes third parties use (docker_compose_hash)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from warden.compose.manifest import Manifest
from warden.errors import BadInput

SUB_HASH_FIELDS = ("docker_compose_file", "pre_launch_script")


def compose_hash(raw: bytes) -> bytes:
    """sha256 of the exact bytes of app-compose.json, as the guest measures it (never a re-serialisation)."""
    return hashlib.sha256(raw).digest()


def app_id_of(compose_hash: bytes) -> bytes:
    """The app_id dstack derives when none is given: the first 20 bytes of the compose hash."""
    if len(compose_hash) != 32:
        raise BadInput(f"a compose hash is 32 bytes, got {len(compose_hash)}")
    return compose_hash[:20]


def sub_hashes(manifest: Manifest | Mapping[str, Any]) -> dict[str, bytes | None]:
    """sha256 of the UTF-8 of docker_compose_file and pre_launch_script (None when absent or not a string)."""
    fields = manifest.fields if isinstance(manifest, Manifest) else manifest
    result: dict[str, bytes | None] = {}
    for name in SUB_HASH_FIELDS:
        value = fields.get(name)
        result[name] = hashlib.sha256(value.encode()).digest() if isinstance(value, str) else None
    return result
