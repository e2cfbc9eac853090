"""Certificates the KMS issues: its root CA, one CA per app (derived, so every replica has the same key),
and leaf certificates for attested CSRs."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warden.errors import BadInput
from warden.hexutil import parse_hex
from warden.keys.kdf import p256_private_key

APP_ID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.3")  # the app id, as in dstack's RA-TLS certificates
CSR_CONFIRM = "please sign cert:"
MAX_VALIDITY = dt.timedelta(days=366)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str, org: str = "warden") -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _ca(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    path_length: int,
    app_id: bytes | None = None,
) -> x509.Certificate:
    # a fixed start keeps the certificate stable across restarts and replicas (same keys → same cert)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(int.from_bytes(key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)[1:17], "big") >> 1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )  # fmt: skip
    if app_id is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(APP_ID_OID, app_id), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def root_ca_certificate(ca_secret: bytes) -> x509.Certificate:
    key = p256_private_key(ca_secret)
    return _ca("warden KMS root CA", key, None, key, 1)


def app_ca_certificate(ca_secret: bytes, app_ca_secret: bytes, app_id: bytes) -> x509.Certificate:
    root = root_ca_certificate(ca_secret)
    return _ca(
        f"warden app CA {app_id.hex()}", p256_private_key(app_ca_secret), root, p256_private_key(ca_secret), 0, app_id
    )


@dataclass(frozen=True)
class CertRequest:
    """An attested certificate request (our JSON form of dstack's CSR v1 and v2)."""

    version: int
    public_key_der: bytes  # SPKI of the key the certificate is for
    subject: str
    alt_names: tuple[str, ...]
    server_auth: bool
    client_auth: bool
    attestation: dict[str, Any]
    not_before: dt.datetime | None = None  # v2 only
    not_after: dt.datetime | None = None  # v2 only


def csr_bytes(csr: dict[str, Any]) -> bytes:
    """What the CSR key signs: the CSR object as canonical JSON."""
    return json.dumps(csr, sort_keys=True, separators=(",", ":")).encode()


def parse_cert_request(version: int, csr: Any, signature_hex: Any) -> CertRequest:
    """Check shape, the confirmation string and the CSR key's signature; the attestation is checked later."""
    if not isinstance(csr, dict) or csr.get("confirm") != CSR_CONFIRM:
        raise BadInput(f"invalid CSR: `confirm` must be {CSR_CONFIRM!r}")
    try:
        der = parse_hex(str(csr["pubkey"]), f"CSR v{version} pubkey")
        key = serialization.load_der_public_key(der)
        signature = parse_hex(str(signature_hex), f"CSR v{version} signature")
        config = csr["config"]
        if not isinstance(config, dict):
            raise TypeError("config")
        if version == 1:
            attestation = {"quote": csr["quote"], "event_log": csr.get("event_log"), "vm_config": csr.get("vm_config")}
        else:
            attestation = dict(csr["attestation"])
    except (KeyError, ValueError, TypeError) as exc:
        raise BadInput(f"invalid CSR v{version}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadInput("invalid CSR: the key must be P-256")
    try:
        key.verify(signature, csr_bytes(csr), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadInput("invalid CSR: signature does not match its key") from None
    not_before = not_after = None
    if version >= 2:
        not_before = _time(config.get("not_before"))
        not_after = _time(config.get("not_after"))
    return CertRequest(
        version=version,
        public_key_der=der,
        subject=str(config.get("subject", "")),
        alt_names=tuple(str(n) for n in config.get("alt_names", [])),
        server_auth=bool(config.get("usage_server_auth", False)),
        client_auth=bool(config.get("usage_client_auth", False)),
        attestation=attestation,
        not_before=not_before,
        not_after=not_after,
    )


def issue_leaf(
    request: CertRequest, app_ca: x509.Certificate, app_ca_secret: bytes, app_id: bytes, now: dt.datetime
) -> x509.Certificate:
    start = request.not_before or now
    end = request.not_after or now + dt.timedelta(days=90)
    if end <= start or end - start > MAX_VALIDITY:
        raise BadInput("invalid CSR validity: not_after must follow not_before, at most a year later")
    usages = [u for u, on in ((ExtendedKeyUsageOID.SERVER_AUTH, request.server_auth),
                              (ExtendedKeyUsageOID.CLIENT_AUTH, request.client_auth)) if on]  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(request.subject or app_id.hex(), "warden app"))
        .issuer_name(app_ca.subject)
        .public_key(serialization.load_der_public_key(request.public_key_der))  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.UnrecognizedExtension(APP_ID_OID, app_id), critical=False)
    )
    if request.alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in request.alt_names]), critical=False
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(p256_private_key(app_ca_secret), hashes.SHA256())


def _time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    raise BadInput("invalid CSR: not_before / not_after must be unix seconds")
