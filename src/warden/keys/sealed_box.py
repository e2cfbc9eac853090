"""Seal a message to one X25519 public key, and bind that key into an attestation's report_data.

The KMS releases keys only in sealed form: the requester generates an X25519 key pair, puts a hash
of the public key into its quote's report_data, and only the holder of the private key can open the
answer. A replayed quote with another key fails the binding; a replayed request is useless without
the private key.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warden.errors import BadInput

SEAL_INFO = b"warden-sealed-box-v1"
KEY_SIZE = 32
NONCE_SIZE = 12


def report_data_for(purpose: str, public_key: bytes) -> bytes:
    """The 64 report_data bytes that bind `public_key` to a quote for one purpose (sha512 of both)."""
    return hashlib.sha512(purpose.encode() + b":" + public_key).digest()


def new_key_pair() -> tuple[bytes, bytes]:
    """(private, public) X25519 keys as raw 32-byte strings."""
    private = X25519PrivateKey.generate()
    return _raw_private(private), _raw_public(private.public_key())


def public_key_of(private: bytes) -> bytes:
    return _raw_public(X25519PrivateKey.from_private_bytes(private).public_key())


def seal(recipient_public: bytes, message: bytes) -> bytes:
    """ephemeral public key (32) ‖ nonce (12) ‖ AES-256-GCM(message), key from X25519 + HKDF-SHA256."""
    if len(recipient_public) != KEY_SIZE:
        raise BadInput("requester key must be a 32-byte X25519 public key")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw_public(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    key = _box_key(shared, ephemeral_public, recipient_public)
    nonce = os.urandom(NONCE_SIZE)
    return ephemeral_public + nonce + AESGCM(key).encrypt(nonce, message, ephemeral_public)


def open_sealed(private: bytes, sealed: bytes) -> bytes:
    """Open a sealed message; a wrong key or any altered byte raises BadInput."""
    if len(sealed) < KEY_SIZE + NONCE_SIZE + 16:
        raise BadInput("sealed message is too short")
    ephemeral_public, nonce, body = (
        sealed[:KEY_SIZE],
        sealed[KEY_SIZE : KEY_SIZE + NONCE_SIZE],
        sealed[KEY_SIZE + NONCE_SIZE :],
    )
    me = X25519PrivateKey.from_private_bytes(private)
    shared = me.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _box_key(shared, ephemeral_public, _raw_public(me.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, body, ephemeral_public)
    except InvalidTag:
        raise BadInput("sealed message cannot be opened with this key (wrong key or altered)") from None


def _box_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(SHA256(), 32, salt=None, info=SEAL_INFO + ephemeral_public + recipient_public).derive(shared)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key: X25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
