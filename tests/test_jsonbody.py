"""The one JSON parser for bodies from strangers: nesting counted without recursion, exactly as JSON nests."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.errors import BadInput
from warden.jsonbody import JsonRefused, cap_recursion_limit, loads, nests_deeper_than

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:\u00e9\n'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner, max_size=4),
    max_leaves=40,
)


ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.integers(min_value=0, max_value=8))
def test_nesting_is_counted_as_json_nests_whatever_the_strings_hold(value: Any, limit: int) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert nests_deeper_than(text, limit) == (depth(value) > limit)
        for encoding in ENCODINGS:  # json.loads reads all of these from bytes
            assert nests_deeper_than(text.encode(encoding), limit) == (depth(value) > limit), encoding


@given(json_values)
def test_what_fits_parses_exactly_as_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text, max_depth=64) == json.loads(text)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 100_000,  # never closed
        b'["\\"",' + b"[" * 65 + b"]" * 66,  # an escaped quote does not end the string early
    ],
)
def test_deep_bodies_are_refused_before_decoding(body: bytes) -> None:
    with pytest.raises(JsonRefused, match="nested deeper than 64 levels"):
        loads(body)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32-be"])
def test_deep_bodies_in_utf16_and_utf32_are_refused(encoding: str) -> None:
    # read byte by byte, the escaped quote's second byte would end the string and hide every bracket after it
    text = '["\\"",' + "[" * 100_000 + "]" * 100_000 + "]"
    assert nests_deeper_than(text.encode(encoding))
    with pytest.raises(JsonRefused, match="nested deeper than 64 levels"):
        loads(text.encode(encoding))


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"[" + b"[1, {}]," * 130_000 + b"[]]", False),  # 1 MiB, wide and shallow
        (b"[" * 60 + b'"' + b"\\\\" * 500_000 + b'"' + b"]" * 60, False),  # 1 MiB of escaped backslashes
        (b"[" * 60 + b'"",' * 340_000 + b'""' + b"]" * 60, False),  # 1 MiB of empty strings
        # an unterminated string full of escaped quotes: every one of them could start a string
        (b"[" * 60 + b"{}," * 10 + b'"' + b'\\"' * 500_000, False),
        (b"[" * 70 + b'"' + b'\\"' * 500_000 + b"\\", True),  # the decoder opens 70 levels before failing
    ],
)
def test_a_mebibyte_of_pathological_json_is_judged_right(body: bytes, too_deep: bool) -> None:
    # how long it takes is bench/bench_body_guard.py's business (linear: a few ms per MiB)
    assert nests_deeper_than(body) is too_deep


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"event_log": "[" * 10_000, "note": ']]]}}}\\"[[['})
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    ("body", "phrase"),
    [(b"{not json", "not JSON"), (b'{"n": ' + b"9" * 100_000 + b"}", "not JSON"), (b'"\xff"', "not JSON")],
)
def test_invalid_json_and_endless_numbers_are_bad_input(body: bytes, phrase: str) -> None:
    with pytest.raises(BadInput, match=phrase):
        loads(body)


def test_a_raised_recursion_limit_is_put_back() -> None:
    before = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)  # what importing py_ecc does
        cap_recursion_limit()
        assert sys.getrecursionlimit() == 1000
        sys.setrecursionlimit(500)  # a lower limit someone chose is left alone
        cap_recursion_limit()
        assert sys.getrecursionlimit() == 500
    finally:
        sys.setrecursionlimit(before)
