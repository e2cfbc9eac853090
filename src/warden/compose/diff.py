"""Why two manifests have different compose hashes: field by field, plus the sub-hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from warden.compose.hashing import SUB_HASH_FIELDS, compose_hash, sub_hashes
from warden.compose.manifest import Manifest, effective

LONG_TEXT = 60  # strings longer than this are shown as "N chars, sha256 …"


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class DiffRow:
    field: str
    a: Any  # ABSENT when the field is not in A
    b: Any
    changes_hash: bool  # the field's bytes differ (value, or present in one only)
    same_effect: bool  # after defaults and legacy aliases the guest acts the same

    @property
    def in_a(self) -> bool:
        return self.a is not ABSENT

    @property
    def in_b(self) -> bool:
        return self.b is not ABSENT


@dataclass(frozen=True)
class Explanation:
    rows: tuple[DiffRow, ...]
    compose_hash_a: bytes
    compose_hash_b: bytes
    sub_hashes_a: dict[str, bytes | None]
    sub_hashes_b: dict[str, bytes | None]

    @property
    def same_hash(self) -> bool:
        return self.compose_hash_a == self.compose_hash_b

    @property
    def differing(self) -> list[str]:
        return [row.field for row in self.rows if row.changes_hash]

    @property
    def layout_only(self) -> bool:
        """Same fields and values, different bytes: key order, whitespace, escapes, BOM or newline."""
        return not self.same_hash and not self.differing

    def parts(self) -> dict[str, str]:
        """For each sub-hashed part: identical, differs, absent in A/B, absent in both."""
        result: dict[str, str] = {}
        for name in SUB_HASH_FIELDS:
            a, b = self.sub_hashes_a[name], self.sub_hashes_b[name]
            if a is None and b is None:
                result[name] = "absent in both"
            elif a is None:
                result[name] = "absent in A"
            elif b is None:
                result[name] = "absent in B"
            else:
                result[name] = "identical" if a == b else "differs"
        return result

    def summary(self) -> str:
        if self.same_hash:
            return "same compose hash: the bytes are identical"
        parts = ", ".join(f"{name} {state}" for name, state in self.parts().items())
        if self.layout_only:
            return f"every field is equal, only the layout differs (key order, whitespace, escapes); {parts}"
        return f"{len(self.differing)} field(s) differ: {', '.join(self.differing)}; {parts}"


def explain(a: Manifest, b: Manifest) -> Explanation:
    names = sorted(set(a.fields) | set(b.fields))
    rows = []
    for name in names:
        value_a = a.fields.get(name, ABSENT)
        value_b = b.fields.get(name, ABSENT)
        differs = value_a is ABSENT or value_b is ABSENT or _canonical(value_a) != _canonical(value_b)
        same_effect = _canonical(effective(a, name)) == _canonical(effective(b, name))
        rows.append(DiffRow(name, value_a, value_b, differs, same_effect))
    return Explanation(tuple(rows), compose_hash(a.raw), compose_hash(b.raw), sub_hashes(a), sub_hashes(b))


def _canonical(value: Any) -> str:
    # 1 and true compare equal in Python; JSON text does not
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def show(value: Any) -> str:
    """A table cell: JSON, with long strings summarised like '12328 chars, sha256 0x1a2b3c4d…'."""
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return f"{len(value)} chars, sha256 0x{hashlib.sha256(value.encode()).hexdigest()[:8]}…"
    return json.dumps(value, ensure_ascii=False)


def json_value(value: Any) -> Any:
    """A JSON cell: the value, or {"chars", "sha256"} for long strings; absent fields are reported separately."""
    if value is ABSENT:
        return None
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return {"chars": len(value), "sha256": "0x" + hashlib.sha256(value.encode()).hexdigest()}
    return value
