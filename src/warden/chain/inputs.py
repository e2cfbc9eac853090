"""Tolerant parsing of what users type: addresses, app ids, 32-byte ids (with or without 0x, any case).

The hex rules live in `warden.hexutil`; the names below stay importable from here for the chain's callers.
"""

from __future__ import annotations

from warden.errors import BadInput
from warden.hexutil import HEX_DIGITS, hex0x, parse_bytes32, parse_hex, strip_0x
from warden.identity.device import PPID_BYTES

__all__ = ["HEX_DIGITS", "hex0x", "parse_address", "parse_bytes32", "parse_hex", "parse_ppid"]


def parse_ppid(text: str, what: str = "PPID") -> bytes:
    """A platform's PPID as exactly 16 bytes (hex, 0x optional): what `device_id = sha256(PPID)` hashes."""
    return parse_hex(text, what, PPID_BYTES)


def parse_address(text: str, what: str = "address") -> str:
    """An Ethereum address (0x optional, `app_` prefix allowed, any case) in EIP-55 form.

    Mixed-case input must carry a valid checksum: a typo in one character is caught here.
    """
    raw = text.strip()
    if raw.lower().startswith("app_"):
        raw = raw[4:]
    digits = strip_0x(raw)
    try:
        value = parse_hex(digits, what, 20)
    except BadInput as exc:
        raise BadInput(str(exc).replace(repr(digits), repr(text), 1)) from None
    from eth_utils import to_checksum_address  # imported on first use: it is slow to import

    checksummed = to_checksum_address(value)
    is_mixed = digits != digits.lower() and digits != digits.upper()
    if is_mixed and digits != checksummed[2:]:
        raise BadInput(f"invalid {what} {text!r}: checksum mismatch (did you mean {checksummed}?)")
    return str(checksummed)
