"""An app's compose-hash allowlist (which exact app-compose.json manifests may boot), like the device one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warden.chain.allowlist import Member, compose_hash_spec, current_members
from warden.chain.app import AppAuth
from warden.chain.inputs import parse_bytes32
from warden.chain.logcache import ScanCache
from warden.compose.hashing import compose_hash
from warden.errors import BadInput
from warden.fleet.devices import HEX_ID

COMPOSE_EVENTS = ("ComposeHashAdded", "ComposeHashRemoved")


def list_compose_hashes(app: AppAuth, cache: ScanCache | None = None) -> tuple[list[Member], int]:
    """Every compose hash allowed now (from ComposeHashAdded/Removed, confirmed by allowedComposeHashes)."""
    members, head, _ = current_members(compose_hash_spec(app), COMPOSE_EVENTS, "ComposeHashAdded", "composeHash", cache)
    return members, head


def hashes_of_document(raw: bytes, source: str) -> list[tuple[bytes, str]]:
    """The compose hashes a file stands for: the rows of a `warden compose matrix --json` output, or
    otherwise the file itself as a manifest (sha256 of its exact bytes)."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        data = None
    rows = _matrix_rows(data)
    if rows is not None:
        found = []
        for i, row in enumerate(rows):
            label = str(row.get("platform") or row.get("name") or f"row {i + 1}")
            found.append(
                (parse_bytes32(str(row["compose_hash"]), f"compose hash in {source} ({label})"), f"{source}:{label}")
            )
        if not found:
            raise BadInput(f"{source} is a matrix with no rows")
        return found
    return [(compose_hash(raw), source)]


def compose_hashes_of(items: Sequence[str], base: Path | None = None) -> list[tuple[bytes, str]]:
    """Each item's compose hashes and where they came from: a hex hash as typed; a file (relative to `base`)
    hashed as a manifest (its exact bytes) or read as `warden compose matrix --json` output."""
    found: list[tuple[bytes, str]] = []
    for item in items:
        if HEX_ID.match(item.strip()):
            found.append((parse_bytes32(item, "compose hash"), item))
            continue
        path = (base / item) if base is not None else Path(item)
        try:
            raw = path.read_bytes()
        except OSError:
            raise BadInput(f"{item!r} is neither a 32-byte compose hash nor a readable file") from None
        found.extend(hashes_of_document(raw, item))
    return found


def _matrix_rows(data: Any) -> list[dict[str, Any]] | None:
    candidates: Sequence[Any] | None = None
    if isinstance(data, list):
        candidates = data
    elif isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list) and value and all(isinstance(r, dict) and "compose_hash" in r for r in value):
                candidates = value
                break
    if candidates is None or not all(isinstance(r, dict) and "compose_hash" in r for r in candidates):
        return None
    return list(candidates)
