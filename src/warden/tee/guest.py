"""A devnet guest: a simulated CVM asks the KMS for its app keys and certificate, as a dstack guest does.

Guest versions from 0.5.6 send certificate requests as CSR API v2; older ones send v1. A KMS from
before 0.5.6 refuses v2 ("Unsupported API version: 2"); `fallback_to_v1` retries with v1, which is the
fix for a newer guest in front of an older KMS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from warden.errors import BadInput, OperationFailed
from warden.keys.get_key import GetKeyResult, get_key
from warden.keys.sealed_box import new_key_pair, open_sealed, report_data_for
from warden.kms.certs import CSR_CONFIRM, csr_bytes
from warden.kms.client import KmsClient, KmsRefused
from warden.kms.service import APP_KEY_PURPOSE, RA_TLS_PURPOSE
from warden.tee.cvm import SimCvm

UNSUPPORTED_V2 = "Unsupported API version: 2"


def csr_api_version(guest_version: str) -> int:
    """dstack guests from 0.5.6 on send CSR API v2."""
    try:
        parts = tuple(int(p) for p in guest_version.lstrip("v").split(".")[:3])
    except ValueError:
        raise BadInput(f"invalid guest version {guest_version!r}: expected like 0.5.7") from None
    return 2 if parts >= (0, 5, 6) else 1


@dataclass
class AppKeys:
    """What the KMS released to this CVM (never logged)."""

    k256_key: bytes = field(repr=False)
    k256_signature: bytes
    disk_crypt_key: bytes = field(repr=False)
    env_crypt_key: bytes = field(repr=False)
    ca_cert: str
    gateway_app_id: str
    os_image_hash: bytes


@dataclass
class TlsCertificate:
    key_pem: str = field(repr=False)
    chain: list[str]
    csr_api_version: int


@dataclass
class Guest:
    cvm: SimCvm
    kms: KmsClient
    version: str = "0.5.7"
    fallback_to_v1: bool = False
    gateway: bool = True  # the manifest's gateway_enabled: only then does the guest ask for a certificate
    keys: AppKeys | None = None
    certificate: TlsCertificate | None = None
    certificate_error: str | None = None

    def boot(self) -> AppKeys:
        """Fetch the app keys (raises KmsRefused with the KMS's reason), then try for a certificate."""
        private, public = new_key_pair()
        attestation = self.cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, public))
        answer = self.kms.call(
            "GetAppKey", {"api_version": 1, "attestation": attestation, "requester_key": public.hex()}
        )
        released = json.loads(open_sealed(private, bytes.fromhex(str(answer["sealed_keys"]))))
        self.keys = AppKeys(
            k256_key=bytes.fromhex(released["k256_key"]),
            k256_signature=bytes.fromhex(released["k256_signature"]),
            disk_crypt_key=bytes.fromhex(released["disk_crypt_key"]),
            env_crypt_key=bytes.fromhex(released["env_crypt_key"]),
            ca_cert=released["ca_cert"],
            gateway_app_id=released["gateway_app_id"],
            os_image_hash=bytes.fromhex(released["os_image_hash"]),
        )
        if self.gateway:
            try:
                self.certificate = self.request_certificate(f"{self.cvm.app_id.hex()}.devnet")
                self.certificate_error = None
            except KmsRefused as exc:
                self.certificate, self.certificate_error = None, str(exc)
        return self.keys

    def request_certificate(self, subject: str, alt_names: tuple[str, ...] = ()) -> TlsCertificate:
        """A fresh P-256 key and a certificate for it from the KMS (SignCert), in this guest's CSR version."""
        version = csr_api_version(self.version)
        try:
            return self._sign(version, subject, alt_names)
        except KmsRefused as exc:
            if version == 2 and self.fallback_to_v1 and UNSUPPORTED_V2 in str(exc):
                return self._sign(1, subject, alt_names)
            raise

    def _sign(self, version: int, subject: str, alt_names: tuple[str, ...]) -> TlsCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        attestation = self.cvm.get_quote_response(report_data_for(RA_TLS_PURPOSE, spki))
        config: dict[str, Any] = {
            "subject": subject,
            "alt_names": list(alt_names),
            "usage_server_auth": True,
            "usage_client_auth": False,
        }
        csr: dict[str, Any] = {"confirm": CSR_CONFIRM, "pubkey": spki.hex(), "config": config}
        if version == 1:
            csr |= {"quote": attestation["quote"], "event_log": attestation["event_log"],
                    "vm_config": attestation["vm_config"]}  # fmt: skip
        else:
            csr["attestation"] = {"tee": "tdx", **attestation}
        signature = key.sign(csr_bytes(csr), ec.ECDSA(hashes.SHA256()))
        answer = self.kms.call("SignCert", {"api_version": version, "csr": csr, "signature": signature.hex()})
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return TlsCertificate(key_pem, [str(c) for c in answer["certificate_chain"]], version)

    def get_key(self, path: str, purpose: str) -> GetKeyResult:
        if self.keys is None:
            raise OperationFailed("the CVM has no app keys: it has not booted")
        return get_key(self.keys.k256_key, self.keys.k256_signature, path, purpose)
