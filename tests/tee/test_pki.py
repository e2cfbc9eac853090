"""The devnet PKI: certificates, SGX extension, persistence (its collateral: test_collateral.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import dcap_qvl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.tee.collateral import tcb_info_json
from warden.tee.pki import (
    DEVNET_FMSPC,
    DEVNET_PCE_ID,
    MAX_PCE_SVN,
    SGX_EXTENSION_OID,
    UP_TO_DATE_CPU_SVN,
    UP_TO_DATE_PCE_SVN,
    MockIntelPki,
    PckCredential,
    PkiError,
    platform_instance_id,
)

KEY_FILES = ("root-ca.key", "platform-ca.key", "tcb-signing.key")


@pytest.fixture(scope="module")
def pki() -> MockIntelPki:
    return MockIntelPki.create()


def test_chain_is_devnet_and_well_formed(pki: MockIntelPki) -> None:
    root = x509.load_der_x509_certificate(pki.root_ca_der)
    assert "devnet" in root.subject.rfc4514_string()
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    pki.platform_cert.verify_directly_issued_by(root)
    pki.tcb_cert.verify_directly_issued_by(root)
    assert "Platform" in pki.platform_cert.subject.rfc4514_string()  # dcap-qvl's ca() reads "platform" from it
    assert not pki.tcb_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for cert in (root, pki.platform_cert, pki.tcb_cert):
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert list(pki.root_crl) == [] and list(pki.pck_crl) == []
    platform_key = pki.platform_cert.public_key()
    assert isinstance(platform_key, ec.EllipticCurvePublicKey)
    assert pki.pck_crl.is_signature_valid(platform_key)


def test_pck_carries_the_sgx_extension(pki: MockIntelPki) -> None:
    ppid = bytes(range(16))
    pck = pki.issue_pck(ppid)
    ext = dcap_qvl.parse_pck_extension_from_pem(pck.cert_pem)
    assert bytes(ext.ppid) == ppid
    assert bytes(ext.fmspc) == DEVNET_FMSPC
    assert bytes(ext.cpu_svn) == UP_TO_DATE_CPU_SVN
    assert ext.pce_svn == UP_TO_DATE_PCE_SVN
    assert bytes(ext.pce_id) == DEVNET_PCE_ID
    assert ext.sgx_type == 1
    assert bytes(ext.platform_instance_id) == platform_instance_id(ppid)
    # the dynamic-platform / cached-keys / SMT flags are all false, so strict verifier policies accept it
    for flag in ("7.1", "7.2", "7.3"):
        assert bytes(ext.get_value(f"{SGX_EXTENSION_OID}.{flag}")) == b"\x00"
    pck.certificate.verify_directly_issued_by(pki.platform_cert)
    assert pki.issued_pck(pck)
    assert not pki.issued_pck(MockIntelPki.create().issue_pck(ppid))


@settings(max_examples=25, deadline=None)
@given(
    ppid=st.binary(min_size=16, max_size=16),
    fmspc=st.binary(min_size=6, max_size=6),
    cpu_svn=st.binary(min_size=16, max_size=16),
    pce_svn=st.integers(min_value=0, max_value=MAX_PCE_SVN),
    pce_id=st.binary(min_size=2, max_size=2),
)
def test_sgx_extension_round_trips(
    pki: MockIntelPki, ppid: bytes, fmspc: bytes, cpu_svn: bytes, pce_svn: int, pce_id: bytes
) -> None:
    pck = pki.issue_pck(ppid, fmspc, cpu_svn=cpu_svn, pce_svn=pce_svn, pce_id=pce_id)
    loaded = PckCredential.from_pem(pck.cert_pem, pck.key_pem)
    assert (loaded.ppid, loaded.fmspc, loaded.cpu_svn, loaded.pce_svn, loaded.pce_id) == (
        ppid,
        fmspc,
        cpu_svn,
        pce_svn,
        pce_id,
    )


def test_pce_svn_out_of_range_is_refused(pki: MockIntelPki) -> None:
    with pytest.raises(ValueError, match="PCESVN"):
        pki.issue_pck(bytes(16), pce_svn=MAX_PCE_SVN + 1)


def test_pck_credential_refuses_a_foreign_key(pki: MockIntelPki) -> None:
    one, other = pki.issue_pck(bytes(16)), pki.issue_pck(bytes(16))
    with pytest.raises(PkiError):
        PckCredential.from_pem(one.cert_pem, other.key_pem)


def test_load_or_create_persists_the_root(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = MockIntelPki.load_or_create(directory)
    again = MockIntelPki.load_or_create(directory)
    assert again.root_ca_der == first.root_ca_der
    assert again.created == first.created
    assert tcb_info_json(again) == tcb_info_json(first)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in KEY_FILES:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    for name in ("root-ca.pem", "platform-ca.pem", "tcb-signing.pem", "root-ca.crl.pem", "pck.crl.pem"):
        assert (directory / name).read_bytes().startswith(b"-----BEGIN ")


def test_keys_are_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        MockIntelPki.load_or_create(tmp_path / "pki")
    finally:
        os.umask(old)
    for name in KEY_FILES:
        assert stat.S_IMODE((tmp_path / "pki" / name).stat().st_mode) == 0o600


def test_incomplete_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    MockIntelPki.load_or_create(directory)
    (directory / "pki.json").unlink()
    with pytest.raises(PkiError, match=r"without pki\.json"):
        MockIntelPki.load_or_create(directory)


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    MockIntelPki.load_or_create(directory)
    (directory / "tcb-signing.key").write_bytes((directory / "root-ca.key").read_bytes())
    with pytest.raises(PkiError, match="does not match"):
        MockIntelPki.load_or_create(directory)
