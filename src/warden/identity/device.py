"""device_id: how a KMS names the physical machine a CVM runs on."""

from __future__ import annotations

import hashlib
from typing import Literal

DeviceIdFormula = Literal["ppid", "legacy"]
PPID_BYTES = 16  # Intel's Platform Provisioning ID, as the PCK certificate carries it


def device_id_from_ppid(ppid: bytes) -> bytes:
    """dstack ≥ 0.5.6: sha256 of the platform's PPID (from the PCK certificate)."""
    return hashlib.sha256(ppid).digest()


def legacy_device_id(user_data: bytes) -> bytes:
    """dstack ≤ 0.5.5: sha256 of the quote header's user_data (allowlists made then use this value)."""
    return hashlib.sha256(user_data).digest()


def device_id(ppid: bytes, user_data: bytes, formula: DeviceIdFormula = "ppid") -> bytes:
    return legacy_device_id(user_data) if formula == "legacy" else device_id_from_ppid(ppid)
