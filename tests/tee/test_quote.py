"""Synthetic TDX quotes verify under the devnet root exactly as real ones under Intel's, and only there."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import dcap_qvl
import pytest

from warden.errors import BadInput
from warden.tee.collateral import OUT_OF_DATE_ADVISORY, collateral
from warden.tee.pki import TCB_SVNS, MockIntelPki, PckCredential
from warden.tee.quote import HEADER_SIZE, REPORT_DATA_OFFSET, TD_REPORT_SIZE, build_tdx_quote

MRS: dict[str, bytes] = {
    "mr_td": b"\x01" * 48,
    "rt_mr0": b"\x02" * 48,
    "rt_mr1": b"\x03" * 48,
    "rt_mr2": b"\x04" * 48,
    "rt_mr3": b"\x05" * 48,
}
PPID = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.fixture(scope="module")
def pki() -> MockIntelPki:
    return MockIntelPki.create()


@pytest.fixture(scope="module")
def pck(pki: MockIntelPki) -> PckCredential:
    return pki.issue_pck(PPID)


@pytest.fixture(scope="module")
def quote(pki: MockIntelPki, pck: PckCredential) -> bytes:
    return build_tdx_quote(pck, pki, report_data=b"warden test", **MRS)


def verify(pki: MockIntelPki, quote: bytes) -> Any:
    return dcap_qvl.verify_with_root_ca(quote, collateral(pki), pki.root_ca_der, int(time.time()))


def test_verifies_under_the_devnet_root_at_the_wall_clock(pki: MockIntelPki, quote: bytes) -> None:
    report = verify(pki, quote)
    assert report.status == "UpToDate"
    assert list(report.advisory_ids) == []
    assert bytes(report.ppid) == PPID
    parsed = dcap_qvl.parse_quote(quote)
    assert parsed.is_tdx() and parsed.header.version == 4 and parsed.header.tee_type == 0x81
    assert bytes(parsed.report.report_data) == b"warden test".ljust(64, b"\x00")
    for name, value in MRS.items():
        assert bytes(getattr(parsed.report, name)) == value
    assert parsed.ca() == "platform"
    assert bytes(parsed.pck_extension().ppid) == PPID


def test_passes_a_strict_policy(pki: MockIntelPki, quote: bytes) -> None:
    now = int(time.time())
    claims = dcap_qvl.QuoteVerifier(pki.root_ca_der).verify_with_policy(
        quote, collateral(pki), now, dcap_qvl.QuotePolicy.strict(now)
    )
    assert '"UpToDate"' in claims.to_json()


def test_intel_root_rejects_it(pki: MockIntelPki, quote: bytes) -> None:
    with pytest.raises(ValueError, match="Verification failed"):
        dcap_qvl.verify(quote, collateral(pki), int(time.time()))


def test_another_devnet_root_rejects_it(pki: MockIntelPki, quote: bytes) -> None:
    other = MockIntelPki.create()
    with pytest.raises(ValueError):
        dcap_qvl.verify_with_root_ca(quote, collateral(pki), other.root_ca_der, int(time.time()))
    with pytest.raises(ValueError):
        verify(other, quote)


def _chain_offset(quote: bytes) -> int:
    return quote.index(b"-----BEGIN CERTIFICATE-----")


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


SIGNATURE_DATA = HEADER_SIZE + TD_REPORT_SIZE + 4
QE_REPORT = SIGNATURE_DATA + 134


@pytest.mark.parametrize(
    ("where", "error"),
    [
        pytest.param(lambda q: REPORT_DATA_OFFSET + 3, "ISV enclave report signature", id="report_data"),
        pytest.param(lambda q: HEADER_SIZE + 136 + 7, "ISV enclave report signature", id="mr_td"),
        pytest.param(lambda q: 30, "ISV enclave report signature", id="header user_data"),
        pytest.param(lambda q: SIGNATURE_DATA + 10, "ISV enclave report signature", id="quote signature"),
        pytest.param(lambda q: SIGNATURE_DATA + 64 + 10, "QE report hash mismatch", id="attestation key"),
        pytest.param(lambda q: QE_REPORT + 120, "invalid for qe_report", id="QE report"),
        pytest.param(lambda q: QE_REPORT + 384 + 5, "invalid for qe_report", id="QE report signature"),
        pytest.param(lambda q: QE_REPORT + 384 + 64 + 2 + 5, "QE report hash mismatch", id="QE auth data"),
        pytest.param(lambda q: _chain_offset(q) + 400, "certificate chain", id="PCK certificate"),
    ],
)
def test_a_flipped_byte_is_rejected(pki: MockIntelPki, quote: bytes, where: Callable[[bytes], int], error: str) -> None:
    verify(pki, quote)  # the untouched quote is fine
    with pytest.raises(ValueError, match=error):
        verify(pki, _flip(quote, where(quote)))


def test_layout(pki: MockIntelPki, pck: PckCredential, quote: bytes) -> None:
    (signature_length,) = struct.unpack_from("<I", quote, HEADER_SIZE + TD_REPORT_SIZE)
    assert len(quote) == HEADER_SIZE + TD_REPORT_SIZE + 4 + signature_length
    assert quote[-len(pki.root_ca_pem) :] == pki.root_ca_pem
    chain = dcap_qvl.parse_quote(quote).cert_chain_pem_bytes()
    assert bytes(chain) == pki.pck_chain_pem(pck)


def test_user_data_is_stable_per_platform(pki: MockIntelPki, pck: PckCredential, quote: bytes) -> None:
    header = dcap_qvl.parse_quote(quote).header
    assert bytes(header.user_data) == pck.qe_id + bytes(4)
    # a re-issued PCK for the same PPID keeps the legacy device id sha256(user_data)
    reissued = build_tdx_quote(pki.issue_pck(PPID), pki, report_data=b"", **MRS)
    assert dcap_qvl.parse_quote(reissued).header.user_data == header.user_data
    other = build_tdx_quote(pki.issue_pck(os.urandom(16)), pki, report_data=b"", **MRS)
    assert dcap_qvl.parse_quote(other).header.user_data != header.user_data
    explicit = build_tdx_quote(pck, pki, report_data=b"", user_data=b"\x07" * 20, **MRS)
    assert bytes(dcap_qvl.parse_quote(explicit).header.user_data) == b"\x07" * 20
    verify(pki, explicit)


def test_quotes_differ_each_time_but_both_verify(pki: MockIntelPki, pck: PckCredential) -> None:
    one = build_tdx_quote(pck, pki, report_data=b"x", **MRS)
    two = build_tdx_quote(pck, pki, report_data=b"x", **MRS)
    assert one != two  # a fresh attestation key per quote
    assert one[: HEADER_SIZE + TD_REPORT_SIZE] == two[: HEADER_SIZE + TD_REPORT_SIZE]
    verify(pki, one)
    verify(pki, two)


def test_owner_fields_are_carried(pki: MockIntelPki, pck: PckCredential) -> None:
    quote = build_tdx_quote(
        pck, pki, report_data=b"", mr_config_id=b"\x0a" * 48, mr_owner=b"\x0b" * 48, mr_owner_config=b"\x0c" * 48, **MRS
    )
    report = dcap_qvl.parse_quote(quote).report
    assert (bytes(report.mr_config_id), bytes(report.mr_owner), bytes(report.mr_owner_config)) == (
        b"\x0a" * 48,
        b"\x0b" * 48,
        b"\x0c" * 48,
    )
    verify(pki, quote)


def test_out_of_date_platform(pki: MockIntelPki) -> None:
    cpu_svn, pce_svn = TCB_SVNS["OutOfDate"]
    old = pki.issue_pck(PPID, cpu_svn=cpu_svn, pce_svn=pce_svn)
    report = verify(pki, build_tdx_quote(old, pki, report_data=b"", **MRS))
    assert report.status == "OutOfDate"
    assert list(report.advisory_ids) == [OUT_OF_DATE_ADVISORY]


def test_debug_td_is_rejected(pki: MockIntelPki, pck: PckCredential) -> None:
    debug = (1 | 1 << 28).to_bytes(8, "little")
    with pytest.raises(ValueError, match="Debug"):
        verify(pki, build_tdx_quote(pck, pki, report_data=b"", td_attributes=debug, **MRS))


def test_bad_sizes_are_bad_input(pki: MockIntelPki, pck: PckCredential) -> None:
    with pytest.raises(BadInput, match="report_data"):
        build_tdx_quote(pck, pki, report_data=bytes(65), **MRS)
    with pytest.raises(BadInput, match="rt_mr3"):
        build_tdx_quote(pck, pki, report_data=b"", **{**MRS, "rt_mr3": bytes(32)})
    with pytest.raises(BadInput, match="user_data"):
        build_tdx_quote(pck, pki, report_data=b"", user_data=bytes(16), **MRS)


def test_qe_report_binds_the_attestation_key(quote: bytes) -> None:
    signature_data = quote[HEADER_SIZE + TD_REPORT_SIZE + 4 :]
    attestation_key = signature_data[64:128]
    qe_report = signature_data[134 : 134 + 384]
    (auth_length,) = struct.unpack_from("<H", signature_data, 134 + 384 + 64)
    auth = signature_data[134 + 384 + 64 + 2 : 134 + 384 + 64 + 2 + auth_length]
    assert qe_report[320:352] == hashlib.sha256(attestation_key + auth).digest()
