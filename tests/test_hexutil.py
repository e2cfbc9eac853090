"""Hex parsing every layer shares: tolerant input, one message shape, the caller's error class."""

from __future__ import annotations

import re

import pytest

from warden.errors import BadInput
from warden.hexutil import hex0x, maybe_hex, parse_hex, strip_0x
from warden.identity.eventlog import EventLogError


@pytest.mark.parametrize("text", ["0xABcd", "0XabCD", "abcd", "  0xabcd\n"])
def test_prefix_case_and_surrounding_space_do_not_matter(text: str) -> None:
    assert parse_hex(text, "value") == bytes.fromhex("abcd")
    assert parse_hex(text, "value", 2) == bytes.fromhex("abcd")


@pytest.mark.parametrize(
    ("text", "length", "message"),
    [
        ("0xzz", None, "invalid value '0xzz': not hex (unexpected 'z')"),
        ("ab cd", None, "not hex (unexpected ' ')"),  # inner whitespace is a typo, not formatting
        ("abc", None, "odd number of hex digits"),
        ("0x", 2, "invalid value: empty"),
        ("abcdef", 2, "expected 2 bytes (4 hex digits), got 3"),
    ],
)
def test_bad_hex_says_what_and_why(text: str, length: int | None, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        parse_hex(text, "value", length)


def test_an_empty_value_without_a_length_is_no_bytes() -> None:
    assert parse_hex("", "value") == parse_hex("0x", "value") == b""


def test_the_callers_error_class_is_raised() -> None:
    with pytest.raises(EventLogError, match="digest"):
        parse_hex("xyz", "digest", error=EventLogError)


def test_long_bad_values_are_cut_in_the_message() -> None:
    with pytest.raises(BadInput) as raised:
        parse_hex("ab" * 5000 + "zz", "quote")
    assert len(str(raised.value)) < 200 and "not hex (unexpected 'z')" in str(raised.value)


@pytest.mark.parametrize(("text", "value"), [("0xab", b"\xab"), ("AB", b"\xab"), ("", None), ("0x", None),
                                             ("abc", None), ("prod5", None), ("shared-key-demo-1", None)])  # fmt: skip
def test_maybe_hex_tells_ids_from_names(text: str, value: bytes | None) -> None:
    assert maybe_hex(text) == value


def test_output_is_0x_lowercase_and_strip_0x_removes_one_prefix() -> None:
    assert hex0x(b"\xab\xcd") == "0xabcd"
    assert strip_0x("0X0xab") == "0xab" and strip_0x("ab") == "ab"
