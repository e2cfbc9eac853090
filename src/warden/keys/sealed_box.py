"""Seal a message to one X25519 public key, and bind that key into an attestation's report_data.

The KMS releases keys only in sealed form: the requester generates an X25519 key pair, puts a hash
of the public key into its quote's report_data, and only the holder of the private key can open the
answer. A replayed quote with another key fails the binding; a replayed request is useless without
the private key.

A sealed message is `SEAL_VERSION` (one byte) ‖ RFC 9180 HPKE base-mode single-shot output (the 32-byte
encapsulated key, then the AES-256-GCM ciphertext), with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
AES-256-GCM, and the version inside the HPKE `info`, so a box cannot be passed off under another version.
Version 1 (a hand-made X25519 + HKDF + AES-GCM box, with no version byte) is no longer opened: sealed
answers are never stored, so both ends only need to run the same release. This is warden's own KMS API,
not a dstack wire format (dstack releases app keys over RA-TLS and never sees these boxes).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from warden.errors import BadInput

SEAL_VERSION = 2
SEAL_INFO = b"warden-sealed-box-v2"
KEY_SIZE = 32
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_TAG_SIZE = 16


def report_data_for(purpose: str, public_key: bytes) -> bytes:
    """The 64 report_data bytes that bind `public_key` to a quote for one purpose (sha512 of both)."""
    return hashlib.sha512(purpose.encode() + b":" + public_key).digest()


def new_key_pair() -> tuple[bytes, bytes]:
    """(private, public) X25519 keys as raw 32-byte strings."""
    private = X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def seal(recipient_public: bytes, message: bytes) -> bytes:
    """`message` encrypted to the holder of the X25519 private key for `recipient_public` (see the module)."""
    if len(recipient_public) != KEY_SIZE:
        raise BadInput("requester key must be a 32-byte X25519 public key")
    recipient = X25519PublicKey.from_public_bytes(recipient_public)
    return bytes([SEAL_VERSION]) + _SUITE.encrypt(message, recipient, info=SEAL_INFO)


def open_sealed(private: bytes, sealed: bytes) -> bytes:
    """Open a sealed message; another version, a wrong key or any altered byte raises BadInput."""
    if not sealed:
        raise BadInput("sealed message is empty")
    if sealed[0] != SEAL_VERSION:
        raise BadInput(f"sealed message has format version {sealed[0]}; this warden opens version {SEAL_VERSION}")
    if len(sealed) < 1 + KEM.X25519.enc_length() + _TAG_SIZE:
        raise BadInput("sealed message is too short")
    try:
        return _SUITE.decrypt(sealed[1:], X25519PrivateKey.from_private_bytes(private), info=SEAL_INFO)
    except InvalidTag:
        raise BadInput("sealed message cannot be opened with this key (wrong key or altered)") from None
