"""Hex text as users, files and peers write it (`0x` optional, any case), and the one form warden writes.

Every layer parses hex through here, so a bad value reads the same everywhere: what it was meant to be,
what was wrong with it, and never a bare `ValueError` from `bytes.fromhex`.
"""

from __future__ import annotations

from warden.errors import BadInput

HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SHOWN = 100  # longer bad values are cut in messages: a quote or a key blob would drown the reason


def strip_0x(text: str) -> str:
    """`text` without one leading `0x` or `0X`."""
    return text[2:] if text[:2].lower() == "0x" else text


def parse_hex(text: str, what: str, length: int | None = None, *, error: type[BadInput] = BadInput) -> bytes:
    """Hex text (optional 0x, surrounding whitespace ignored) to bytes; `length` in bytes when it must be exact.

    A malformed value raises `error` (BadInput or a subclass) naming `what` and the offending text.
    """
    digits = strip_0x(text.strip())
    if digits and digits.isascii() and digits.isalnum():  # the usual case, checked in C; errors are explained below
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            pass
        else:
            if length is None or len(value) == length:
                return value
    shown = repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "…"
    if not digits and length:
        raise error(f"invalid {what}: empty")
    bad = sorted({c for c in digits if c not in HEX_DIGITS})
    if bad:
        raise error(f"invalid {what} {shown}: not hex (unexpected {''.join(bad)!r})")
    if len(digits) % 2:
        raise error(f"invalid {what} {shown}: odd number of hex digits")
    value = bytes.fromhex(digits)
    if length is not None and len(value) != length:
        raise error(f"invalid {what} {shown}: expected {length} bytes ({2 * length} hex digits), got {len(value)}")
    return value


def parse_bytes32(text: str, what: str = "32-byte id") -> bytes:
    """A device id, compose hash, OS image hash … as exactly 32 bytes."""
    return parse_hex(text, what, 32)


def maybe_hex(text: str) -> bytes | None:
    """The bytes when `text` is non-empty hex (0x optional), else None: for lookups that also accept names."""
    try:
        return parse_hex(text, "hex") or None
    except BadInput:
        return None


def hex0x(value: bytes) -> str:
    """Bytes as 0x-prefixed lowercase hex, the form every JSON output uses."""
    return "0x" + value.hex()
