"""Quotes: parse and verify the real Intel-signed sample; every tampering is refused with QuoteError."""

from __future__ import annotations

import hashlib

import pytest

from tests.identity.samples import SAMPLE_PPID, sample_collateral, sample_quote, sample_time
from warden.identity.device import device_id, device_id_from_ppid, legacy_device_id
from warden.identity.quote import QuoteError, parse_collateral, parse_quote, quote_bytes, verify_quote


def test_parse_reads_tee_version_fmspc_and_ppid() -> None:
    quote = parse_quote(sample_quote())
    assert (quote.tee, quote.version, quote.fmspc) == ("tdx", 4, "B0C06F000000")
    assert quote.ppid == SAMPLE_PPID
    assert quote.td is not None and len(quote.td.rt_mr3) == 48 and len(quote.td.report_data) == 64


def test_verify_at_a_fixed_time_is_up_to_date_with_the_verified_ppid() -> None:
    verified = verify_quote(sample_quote(), sample_collateral(), sample_time())
    assert verified.tcb_status == "UpToDate"
    assert verified.advisory_ids == ()
    assert verified.ppid == SAMPLE_PPID


def test_device_id_is_sha256_of_the_ppid_and_legacy_formula_hashes_user_data() -> None:
    quote = parse_quote(sample_quote())
    expected = hashlib.sha256(SAMPLE_PPID).digest()
    assert device_id_from_ppid(SAMPLE_PPID) == expected
    assert device_id(SAMPLE_PPID, quote.user_data) == expected
    assert device_id(SAMPLE_PPID, quote.user_data, "legacy") == legacy_device_id(quote.user_data)
    assert legacy_device_id(quote.user_data) == hashlib.sha256(quote.user_data).digest() != expected


def test_expired_collateral_is_refused_with_a_hint() -> None:
    with pytest.raises(QuoteError, match="not valid at that time"):
        verify_quote(sample_quote(), sample_collateral(), sample_time() + 10 * 365 * 86400)


@pytest.mark.parametrize("offset", [60, 48 + 520, 48 + 100, 700, 1000, 4000])
def test_a_flipped_byte_anywhere_is_refused(offset: int) -> None:
    raw = bytearray(sample_quote())
    raw[offset] ^= 0x01
    with pytest.raises(QuoteError):
        verify_quote(bytes(raw), sample_collateral(), sample_time())


def test_truncated_and_garbage_quotes_are_refused() -> None:
    for raw in (b"", b"garbage", sample_quote()[:100], sample_quote()[:-200]):
        with pytest.raises(QuoteError):
            verify_quote(raw, sample_collateral(), sample_time())


def test_hex_text_forms_decode_to_the_same_quote() -> None:
    raw = sample_quote()
    for text in (raw.hex(), "0x" + raw.hex(), raw.hex().upper(), raw.hex()[:100] + "\n" + raw.hex()[100:] + "\n"):
        assert quote_bytes(text.encode()) == raw
    assert quote_bytes(raw) == raw


def test_bad_collateral_is_a_clear_error() -> None:
    with pytest.raises(QuoteError, match="invalid collateral"):
        parse_collateral("{}")
    with pytest.raises(QuoteError):
        verify_quote(sample_quote(), "not json", sample_time())
