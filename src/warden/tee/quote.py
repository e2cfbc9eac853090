"""Build TDX quotes (version 4, TD report 1.0) signed through the devnet PKI.

Layout (all integers little-endian):
    header (48) | TD report (584) | u32 signature-data length | signature data
    signature data = ECDSA sig over header‖report (64) | attestation public key (64)
                     | u16 type 6 | u32 length | QE report (384) | QE report sig by the PCK key (64)
                     | u16 auth length | QE auth data | u16 type 5 | u32 length | PEM chain leaf‖platform‖root
The QE report's report_data starts with sha256(attestation key ‖ QE auth data), which ties the per-quote
attestation key to the platform's PCK certificate.
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from warden.errors import BadInput
from warden.tee.pki import (
    QE_ATTRIBUTES,
    QE_ISV_PROD_ID,
    QE_ISV_SVN,
    QE_MISCSELECT,
    QE_MRENCLAVE,
    QE_MRSIGNER,
    TDX_MODULE_MRSEAM,
    TDX_MODULE_MRSIGNER,
    TEE_TCB_SVN,
    MockIntelPki,
    PckCredential,
    raw_signature,
)

QUOTE_VERSION = 4
ATTESTATION_KEY_TYPE_ECDSA_P256 = 2
TEE_TYPE_TDX = 0x81
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")  # verifiers refuse any other vendor
CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5
HEADER_SIZE = 48
TD_REPORT_SIZE = 584
QE_REPORT_SIZE = 384
REPORT_DATA_OFFSET = HEADER_SIZE + 520  # where report_data sits in the quote

# TD attributes: only SEPT_VE_DISABLE (bit 28); verifiers refuse a TD without it or with DEBUG set.
DEFAULT_TD_ATTRIBUTES = (1 << 28).to_bytes(8, "little")
DEFAULT_XFAM = bytes.fromhex("e702060000000000")
MR_SIZE = 48


def _fixed(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise BadInput(f"{what} must be {size} bytes, got {len(value)}")
    return bytes(value)


def pad_report_data(report_data: bytes) -> bytes:
    """report_data as a quote holds it: at most 64 bytes, zero-padded on the right."""
    if len(report_data) > 64:
        raise BadInput(f"report_data is at most 64 bytes, got {len(report_data)}")
    return bytes(report_data).ljust(64, b"\x00")


def _td_report(
    *,
    mr_td: bytes,
    rt_mrs: tuple[bytes, bytes, bytes, bytes],
    report_data: bytes,
    mr_config_id: bytes,
    mr_owner: bytes,
    mr_owner_config: bytes,
    td_attributes: bytes,
) -> bytes:
    body = b"".join(
        [
            TEE_TCB_SVN,
            TDX_MODULE_MRSEAM,
            TDX_MODULE_MRSIGNER,
            bytes(8),  # SEAM attributes
            _fixed(td_attributes, 8, "td_attributes"),
            DEFAULT_XFAM,
            _fixed(mr_td, MR_SIZE, "mr_td"),
            _fixed(mr_config_id, MR_SIZE, "mr_config_id"),
            _fixed(mr_owner, MR_SIZE, "mr_owner"),
            _fixed(mr_owner_config, MR_SIZE, "mr_owner_config"),
            *(_fixed(rt_mr, MR_SIZE, f"rt_mr{i}") for i, rt_mr in enumerate(rt_mrs)),
            pad_report_data(report_data),
        ]
    )
    assert len(body) == TD_REPORT_SIZE
    return body


def _qe_report(cpu_svn: bytes, report_data: bytes) -> bytes:
    report = b"".join(
        [
            cpu_svn,
            struct.pack("<I", QE_MISCSELECT),
            bytes(28),
            QE_ATTRIBUTES,
            QE_MRENCLAVE,
            bytes(32),
            QE_MRSIGNER,
            bytes(96),
            struct.pack("<HH", QE_ISV_PROD_ID, QE_ISV_SVN),
            bytes(60),
            report_data,
        ]
    )
    assert len(report) == QE_REPORT_SIZE
    return report


def build_tdx_quote(
    pck: PckCredential,
    pki: MockIntelPki,
    *,
    mr_td: bytes,
    rt_mr0: bytes,
    rt_mr1: bytes,
    rt_mr2: bytes,
    rt_mr3: bytes,
    report_data: bytes,
    mr_config_id: bytes = bytes(MR_SIZE),
    mr_owner: bytes = bytes(MR_SIZE),
    mr_owner_config: bytes = bytes(MR_SIZE),
    td_attributes: bytes = DEFAULT_TD_ATTRIBUTES,
    user_data: bytes | None = None,
) -> bytes:
    """A TDX v4 quote for the given measurements, from the platform holding `pck`.

    `report_data` (≤ 64 bytes) is zero-padded. `user_data` (header, 20 bytes) defaults to the platform's
    QE id plus four zero bytes, so the pre-0.5.6 device id sha256(user_data) stays fixed per platform.
    """
    header_user_data = pck.qe_id + bytes(4) if user_data is None else _fixed(user_data, 20, "user_data")
    header = struct.pack(
        "<HHIHH16s20s",
        QUOTE_VERSION,
        ATTESTATION_KEY_TYPE_ECDSA_P256,
        TEE_TYPE_TDX,
        0,  # reserved in TDX quotes (QE SVN in SGX ones)
        0,  # reserved in TDX quotes (PCE SVN in SGX ones)
        INTEL_QE_VENDOR_ID,
        header_user_data,
    )
    body = _td_report(
        mr_td=mr_td,
        rt_mrs=(rt_mr0, rt_mr1, rt_mr2, rt_mr3),
        report_data=report_data,
        mr_config_id=mr_config_id,
        mr_owner=mr_owner,
        mr_owner_config=mr_owner_config,
        td_attributes=td_attributes,
    )

    # a fresh attestation key per quote: the QE report below vouches for it under the PCK key
    attestation_key = ec.generate_private_key(ec.SECP256R1())
    attestation_pub = attestation_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )[1:]
    quote_signature = raw_signature(attestation_key, header + body)

    qe_auth_data = os.urandom(32)
    qe_report = _qe_report(pck.cpu_svn, hashlib.sha256(attestation_pub + qe_auth_data).digest() + bytes(32))
    qe_report_signature = raw_signature(pck.private_key, qe_report)
    chain = pki.pck_chain_pem(pck)
    certification = b"".join(
        [
            qe_report,
            qe_report_signature,
            struct.pack("<H", len(qe_auth_data)),
            qe_auth_data,
            struct.pack("<HI", CERT_DATA_PCK_CHAIN, len(chain)),
            chain,
        ]
    )
    signature_data = b"".join(
        [
            quote_signature,
            attestation_pub,
            struct.pack("<HI", CERT_DATA_QE_REPORT, len(certification)),
            certification,
        ]
    )
    return header + body + struct.pack("<I", len(signature_data)) + signature_data
