"""Fuzzing: whatever bytes arrive, the parsers answer with their own error type, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.identity.samples import sample_quote
from warden.errors import BadInput
from warden.identity.attestation import read_attestation
from warden.identity.eventlog import EventLogError, parse_event_log
from warden.identity.quote import QuoteError, parse_quote, quote_bytes

SAMPLE = sample_quote()
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=6000))
def test_random_bytes_are_a_quote_error_or_a_quote(data: bytes) -> None:
    with contextlib.suppress(QuoteError):
        parse_quote(data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_real_quotes_parse_or_fail_cleanly(edits: list[tuple[int, int]]) -> None:
    raw = bytearray(SAMPLE)
    for offset, value in edits:
        raw[offset] = value
    try:
        quote = parse_quote(bytes(raw))
    except QuoteError:
        return
    assert quote.tee in ("tdx", "sgx")


@FUZZ
@given(st.integers(0, len(SAMPLE)))
def test_truncated_quotes_fail_cleanly(length: int) -> None:
    with contextlib.suppress(QuoteError):
        parse_quote(SAMPLE[:length])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
event_entries = st.fixed_dictionaries(
    {},
    optional={
        "imr": st.integers(-2, 5) | st.text(max_size=3),
        "event_type": st.sampled_from([0x08000001, 1, 0x80000001]) | st.text(max_size=3),
        "digest": st.text(alphabet="0123456789abcdefx", max_size=100) | json_values,
        "event": st.sampled_from(["app-id", "compose-hash", "system-ready"]) | json_values,
        "event_payload": st.text(alphabet="0123456789abcdefgx", max_size=80) | json_values,
        "version": st.integers(0, 3),
    },
)


@FUZZ
@given(st.lists(event_entries, max_size=6) | json_values)
def test_event_log_parser_only_raises_its_own_error(log: Any) -> None:
    for form in (log, json.dumps(log)):
        with contextlib.suppress(EventLogError):
            parse_event_log(form)


@FUZZ
@given(
    st.binary(max_size=300)
    | st.builds(lambda v: json.dumps(v).encode(), json_values)
    | st.builds(lambda q, e: json.dumps({"quote": q, "event_log": e}).encode(), st.text(max_size=40), json_values)
)
def test_attestation_reader_only_raises_bad_input(data: bytes) -> None:
    with contextlib.suppress(BadInput):
        read_attestation(data)


@FUZZ
@given(st.binary(max_size=200))
def test_quote_bytes_never_crashes(data: bytes) -> None:
    with contextlib.suppress(QuoteError):
        quote_bytes(data)
