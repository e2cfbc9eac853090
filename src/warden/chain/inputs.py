"""Tolerant parsing of what users type: addresses, app ids, 32-byte ids (with or without 0x, any case)."""

from __future__ import annotations

from warden.errors import BadInput
from warden.identity.device import PPID_BYTES

HEX_DIGITS = set("0123456789abcdefABCDEF")


def parse_hex(text: str, what: str, length: int | None = None) -> bytes:
    """Hex text (optional 0x) to bytes; `length` in bytes when it must be exact."""
    raw = text.strip()
    digits = raw[2:] if raw[:2].lower() == "0x" else raw
    if not digits and length:
        raise BadInput(f"invalid {what}: empty")
    bad = sorted({c for c in digits if c not in HEX_DIGITS})
    if bad:
        raise BadInput(f"invalid {what} {text!r}: not hex (unexpected {''.join(bad)!r})")
    if len(digits) % 2:
        raise BadInput(f"invalid {what} {text!r}: odd number of hex digits")
    value = bytes.fromhex(digits)
    if length is not None and len(value) != length:
        raise BadInput(f"invalid {what} {text!r}: expected {length} bytes ({2 * length} hex digits), got {len(value)}")
    return value


def parse_bytes32(text: str, what: str = "32-byte id") -> bytes:
    """A device id, compose hash, OS image hash … as exactly 32 bytes."""
    return parse_hex(text, what, 32)


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
    digits = raw[2:] if raw[:2].lower() == "0x" else raw
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


def hex0x(value: bytes) -> str:
    """Bytes as 0x-prefixed lowercase hex, the form every JSON output uses."""
    return "0x" + value.hex()
