"""A devnet stand-in for Intel's attestation PKI: root CA, PCK Platform CA, TCB signing key, CRLs, PCK leaves.

Quotes this package builds chain to `MockIntelPki.root_ca_der` exactly as real quotes chain to Intel's SGX
root, so dcap-qvl's `verify_with_root_ca` accepts them and its plain `verify` (Intel's root) refuses them.
Every name says "devnet": nothing here is, or can pass for, Intel's production PKI. The collateral signed
with this PKI (TCB info, QE identity) is built by warden.tee.collateral.

Files in the directory given to `load_or_create` (mode 0700; private keys 0600):
    root-ca.pem, root-ca.key, platform-ca.pem, platform-ca.key, tcb-signing.pem, tcb-signing.key,
    root-ca.crl.pem, pck.crl.pem, pki.json (format version and creation time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dcap_qvl
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from warden.errors import OperationFailed
from warden.files import private_dir, write_file, write_secret_file

# --- fixed facts the quotes and the collateral must agree on -------------------------------------------------

DEVNET_FMSPC = bytes.fromhex("b0c06f000000")  # one platform family for the whole devnet: one TCB info covers it
DEVNET_PCE_ID = bytes(2)
SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"

TcbState = Literal["UpToDate", "OutOfDate"]

# Per TCB state: (CPUSVN of the PCK certificate, PCESVN). The collateral has one level for each.
UP_TO_DATE_CPU_SVN = bytes([3, 3, 2, 2, 4, 1, 0, 5]) + bytes(8)
UP_TO_DATE_PCE_SVN = 11
OUT_OF_DATE_CPU_SVN = bytes([2, 2, 2, 2, 3, 1, 0, 5]) + bytes(8)
OUT_OF_DATE_PCE_SVN = 5
# dcap-qvl reads PCESVN as one or two raw INTEGER bytes, so 0x8000 and up (three DER bytes) would not parse
MAX_PCE_SVN = 0x7FFF
TCB_SVNS: dict[TcbState, tuple[bytes, int]] = {
    "UpToDate": (UP_TO_DATE_CPU_SVN, UP_TO_DATE_PCE_SVN),
    "OutOfDate": (OUT_OF_DATE_CPU_SVN, OUT_OF_DATE_PCE_SVN),
}

# TDX module: TEE_TCB_SVN[0] is the module's ISVSVN, [1] its major version (selects identity "TDX_01").
TEE_TCB_SVN = bytes([6, 1, 3]) + bytes(13)
TDX_MODULE_MRSIGNER = bytes(48)  # Intel signs the TDX module with an all-zero MRSIGNER_SEAM
TDX_MODULE_MRSEAM = hashlib.sha384(b"warden devnet TDX module").digest()

# The TD quoting enclave's identity, mirrored in the QE report of every quote.
QE_MRSIGNER = hashlib.sha256(b"warden devnet TD quoting enclave signer").digest()
QE_MRENCLAVE = hashlib.sha256(b"warden devnet TD quoting enclave").digest()
QE_ISV_PROD_ID = 2
QE_ISV_SVN = 4
QE_ATTRIBUTES = bytes([0x15]) + bytes(7) + bytes([0xE7]) + bytes(7)  # INIT|MODE64BIT|PROVISIONKEY, no DEBUG
QE_MISCSELECT = 0

CA_LIFETIME = dt.timedelta(days=25 * 366)
LEAF_LIFETIME = dt.timedelta(days=3653)
CLOCK_SKEW = dt.timedelta(days=1)  # certificates start a day early so a slightly slow verifier clock still accepts them
PKI_FORMAT = 1

_FILES = {
    "root": "root-ca",
    "platform": "platform-ca",
    "tcb": "tcb-signing",
}


class PkiError(OperationFailed):
    """The devnet PKI directory is unreadable or inconsistent."""


# --- DER, just enough for the SGX extension ------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _der(0x06, bytes(body))


def _der_uint(value: int) -> bytes:
    # one extra byte keeps the sign bit clear for values like 0x80
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _der_seq(items: Sequence[bytes]) -> bytes:
    return _der(0x30, b"".join(items))


def _named(suffix: str, value: bytes) -> bytes:
    return _der_seq([_der_oid(f"{SGX_EXTENSION_OID}.{suffix}"), value])


def sgx_extension_der(ppid: bytes, fmspc: bytes, cpu_svn: bytes, pce_svn: int, pce_id: bytes) -> bytes:
    """The value of the Intel SGX extension of a PCK certificate (a 'scalable' platform, no dynamic/cached/SMT)."""
    if len(ppid) != 16 or len(fmspc) != 6 or len(cpu_svn) != 16 or len(pce_id) != 2:
        raise ValueError("PPID, FMSPC, CPUSVN and PCE-ID must be 16, 6, 16 and 2 bytes")
    if not 0 <= pce_svn <= MAX_PCE_SVN:
        raise ValueError(f"PCESVN must be 0..{MAX_PCE_SVN}, got {pce_svn}")
    components = [_named(f"2.{i + 1}", _der_uint(svn)) for i, svn in enumerate(cpu_svn)]
    components.append(_named("2.17", _der_uint(pce_svn)))
    components.append(_named("2.18", _der(0x04, cpu_svn)))
    false = _der(0x01, b"\x00")
    configuration = [_named("7.1", false), _named("7.2", false), _named("7.3", false)]
    return _der_seq(
        [
            _named("1", _der(0x04, ppid)),
            _named("2", _der_seq(components)),
            _named("3", _der(0x04, pce_id)),
            _named("4", _der(0x04, fmspc)),
            _named("5", _der(0x0A, b"\x01")),  # SGX type 1: scalable
            _named("6", _der(0x04, platform_instance_id(ppid))),
            _named("7", _der_seq(configuration)),
        ]
    )


def platform_instance_id(ppid: bytes) -> bytes:
    """A stable 16-byte platform instance id for a devnet platform, derived from its PPID."""
    return hashlib.sha256(b"warden devnet platform instance\x00" + ppid).digest()[:16]


def qe_id(ppid: bytes) -> bytes:
    """The 16-byte quoting-enclave id a platform puts in its quote headers (stable per PPID)."""
    return hashlib.sha256(b"warden devnet QE id\x00" + ppid).digest()[:16]


# --- keys, certificates, CRLs --------------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Warden devnet (not Intel)"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca_path_length: int | None,
    is_ca: bool,
    not_before: dt.datetime,
    lifetime: dt.timedelta,
    extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    public = key.public_key()
    issuer_public = issuer.public_key() if issuer is not None else public
    if not isinstance(issuer_public, ec.EllipticCurvePublicKey):
        raise PkiError("issuer certificate does not hold a P-256 key")
    usage_signing = not is_ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=usage_signing,
                content_commitment=usage_signing,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _empty_crl(
    issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey, this_update: dt.datetime
) -> x509.CertificateRevocationList:
    issuer_public = issuer_key.public_key()
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(this_update + CA_LIFETIME)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-P256-SHA256 signature as the 64 bytes r‖s that quotes and collateral carry."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(data: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{where}: not an EC private key")
    return key


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def iso_time(moment: dt.datetime) -> str:
    """A UTC time as Intel's PCS writes it in collateral (second precision, `Z`)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- PCK credentials ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PckCredential:
    """A platform's PCK leaf certificate and its private key (the key signs the QE report of each quote)."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    ppid: bytes
    fmspc: bytes
    cpu_svn: bytes
    pce_svn: int
    pce_id: bytes

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.certificate)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.private_key)

    @property
    def qe_id(self) -> bytes:
        """The QE id in this platform's quote headers; sha256(qe_id ‖ 4 zero bytes) is the pre-0.5.6 device id."""
        return qe_id(self.ppid)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> PckCredential:
        """Load a stored credential, reading PPID, FMSPC and SVNs back from its SGX extension."""
        certificate = x509.load_pem_x509_certificate(cert_pem)
        key = _load_key(key_pem, "PCK key")
        if not _same_key(certificate, key):
            raise PkiError("PCK key does not match its certificate")
        try:
            ext: Any = dcap_qvl.parse_pck_extension_from_pem(cert_pem)
        except ValueError as exc:
            raise PkiError(f"PCK certificate has no readable SGX extension: {exc}") from None
        return cls(
            certificate=certificate,
            private_key=key,
            ppid=bytes(ext.ppid),
            fmspc=bytes(ext.fmspc),
            cpu_svn=bytes(ext.cpu_svn),
            pce_svn=int(ext.pce_svn),
            pce_id=bytes(ext.pce_id),
        )


# --- the PKI --------------------------------------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class MockIntelPki:
    """Root CA, PCK Platform CA, TCB signing certificate and two empty CRLs, all P-256, all devnet."""

    created: dt.datetime
    root_key: ec.EllipticCurvePrivateKey
    root_cert: x509.Certificate
    platform_key: ec.EllipticCurvePrivateKey
    platform_cert: x509.Certificate
    tcb_key: ec.EllipticCurvePrivateKey
    tcb_cert: x509.Certificate
    root_crl: x509.CertificateRevocationList
    pck_crl: x509.CertificateRevocationList

    def __post_init__(self) -> None:
        self.created = self.created.replace(microsecond=0)

    # creation and persistence

    @classmethod
    def create(cls, now: dt.datetime | None = None) -> MockIntelPki:
        """A fresh PKI in memory; `now` (default: the wall clock) becomes the collateral's issueDate."""
        created = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)  # a naive time is taken as UTC, not local time
        start = created - CLOCK_SKEW
        root_key, platform_key, tcb_key = _new_key(), _new_key(), _new_key()
        root = _certificate(
            _name("Warden devnet Intel SGX Root CA"),
            root_key,
            None,
            root_key,
            ca_path_length=1,
            is_ca=True,
            not_before=start,
            lifetime=CA_LIFETIME,
        )
        platform = _certificate(
            _name("Warden devnet Intel SGX PCK Platform CA"),
            platform_key,
            root,
            root_key,
            ca_path_length=0,
            is_ca=True,
            not_before=start,
            lifetime=CA_LIFETIME,
        )
        tcb = _certificate(
            _name("Warden devnet Intel SGX TCB Signing"),
            tcb_key,
            root,
            root_key,
            ca_path_length=None,
            is_ca=False,
            not_before=start,
            lifetime=CA_LIFETIME,
        )
        return cls(
            created=created,
            root_key=root_key,
            root_cert=root,
            platform_key=platform_key,
            platform_cert=platform,
            tcb_key=tcb_key,
            tcb_cert=tcb,
            root_crl=_empty_crl(root, root_key, start),
            pck_crl=_empty_crl(platform, platform_key, start),
        )

    @classmethod
    def load_or_create(cls, directory: Path) -> MockIntelPki:
        """Load the PKI stored in `directory`, or create and store one there (so a devnet restart keeps its root)."""
        directory = Path(directory)
        meta = directory / "pki.json"
        if meta.exists():
            return cls.load(directory)
        if directory.exists() and any(p.name.endswith((".pem", ".key")) for p in directory.iterdir()):
            raise PkiError(f"{directory}: PKI files without pki.json; remove the directory to start a new devnet PKI")
        pki = cls.create()
        pki.save(directory)
        return pki

    def save(self, directory: Path) -> None:
        """Store certificates and CRLs as PEM and keys as 0600 PEM files in a 0700 directory."""
        private_dir(directory)
        for role, cert, key in (
            ("root", self.root_cert, self.root_key),
            ("platform", self.platform_cert, self.platform_key),
            ("tcb", self.tcb_cert, self.tcb_key),
        ):
            write_secret_file(directory / f"{_FILES[role]}.key", _key_pem(key))
            write_file(directory / f"{_FILES[role]}.pem", _pem(cert))
        write_file(directory / "root-ca.crl.pem", self.root_crl.public_bytes(serialization.Encoding.PEM))
        write_file(directory / "pck.crl.pem", self.pck_crl.public_bytes(serialization.Encoding.PEM))
        # pki.json last: its presence means the rest is complete
        meta = {"format": PKI_FORMAT, "created": iso_time(self.created)}
        write_file(directory / "pki.json", json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> MockIntelPki:
        """Read a PKI written by `save`; refuse one whose keys and certificates do not belong together."""
        try:
            meta = json.loads((directory / "pki.json").read_text())
            if meta.get("format") != PKI_FORMAT:
                raise PkiError(f"{directory}/pki.json: unknown format {meta.get('format')!r}")
            created = dt.datetime.strptime(meta["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            parts: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
            for role, stem in _FILES.items():
                cert = x509.load_pem_x509_certificate((directory / f"{stem}.pem").read_bytes())
                key = _load_key((directory / f"{stem}.key").read_bytes(), f"{directory}/{stem}.key")
                if not _same_key(cert, key):
                    raise PkiError(f"{directory}/{stem}.key does not match {stem}.pem")
                parts[role] = (cert, key)
            root_crl = x509.load_pem_x509_crl((directory / "root-ca.crl.pem").read_bytes())
            pck_crl = x509.load_pem_x509_crl((directory / "pck.crl.pem").read_bytes())
        except (OSError, ValueError, KeyError) as exc:
            raise PkiError(f"cannot load the devnet PKI from {directory}: {exc}") from None
        return cls(
            created=created,
            root_key=parts["root"][1],
            root_cert=parts["root"][0],
            platform_key=parts["platform"][1],
            platform_cert=parts["platform"][0],
            tcb_key=parts["tcb"][1],
            tcb_cert=parts["tcb"][0],
            root_crl=root_crl,
            pck_crl=pck_crl,
        )

    # what verifiers need

    @property
    def root_ca_der(self) -> bytes:
        """The trust anchor to pass to `dcap_qvl.verify_with_root_ca`."""
        return self.root_cert.public_bytes(serialization.Encoding.DER)

    @property
    def root_ca_pem(self) -> bytes:
        return _pem(self.root_cert)

    @property
    def platform_ca_pem(self) -> bytes:
        return _pem(self.platform_cert)

    @property
    def tcb_signing_pem(self) -> bytes:
        """The certificate of the key that signs TCB info and QE identity (chained to the root in collateral)."""
        return _pem(self.tcb_cert)

    def pck_chain_pem(self, pck: PckCredential) -> bytes:
        """Leaf ‖ Platform CA ‖ root, the certification data a quote embeds."""
        return pck.cert_pem + self.platform_ca_pem + self.root_ca_pem

    # PCK certificates

    def issue_pck(
        self,
        ppid: bytes,
        fmspc: bytes = DEVNET_FMSPC,
        *,
        cpu_svn: bytes = UP_TO_DATE_CPU_SVN,
        pce_svn: int = UP_TO_DATE_PCE_SVN,
        pce_id: bytes = DEVNET_PCE_ID,
    ) -> PckCredential:
        """A new PCK leaf certificate (fresh key) for the platform `ppid`, signed by the Platform CA."""
        key = _new_key()
        extension = x509.UnrecognizedExtension(
            x509.ObjectIdentifier(SGX_EXTENSION_OID), sgx_extension_der(ppid, fmspc, cpu_svn, pce_svn, pce_id)
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        certificate = _certificate(
            _name("Warden devnet Intel SGX PCK Certificate"),
            key,
            self.platform_cert,
            self.platform_key,
            ca_path_length=None,
            is_ca=False,
            not_before=min(now, self.created) - CLOCK_SKEW,
            lifetime=LEAF_LIFETIME,
            extra=[extension],
        )
        return PckCredential(certificate, key, bytes(ppid), bytes(fmspc), bytes(cpu_svn), pce_svn, bytes(pce_id))

    def issued_pck(self, pck: PckCredential) -> bool:
        """Whether `pck` was signed by this PKI's Platform CA (a stored one may come from an older devnet)."""
        try:
            pck.certificate.verify_directly_issued_by(self.platform_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
