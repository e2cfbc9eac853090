"""What a dstack KMS gives an app: keys derived from the KMS root keys and the app's identity alone.

No counter, randomness or storage enters a derivation, so every KMS replica holding the same root keys
hands an app identical keys (the disk key additionally depends on the instance id).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.kdf import derive_dh_secret, derive_key, derive_p256_secret, is_p256_secret, p256_private_key

APP_ID_LENGTH = 20
MAX_TIMESTAMP = 2**64 - 1

# The prefixes dstack's KMS signs under; each message is keccak256(prefix ‖ ":" ‖ app_id [‖ ts] ‖ payload).
KMS_ISSUED_PREFIX = b"dstack-kms-issued"
ENV_ENCRYPT_PUBKEY_PREFIX = b"dstack-env-encrypt-pubkey"


def check_app_id(app_id: bytes) -> bytes:
    """The app id unchanged, or BadInput: every derivation and signed message assumes exactly 20 bytes."""
    if len(app_id) != APP_ID_LENGTH:
        raise BadInput("app_id must be 20 bytes")
    return app_id


@dataclass(frozen=True)
class RootKeys:
    """A KMS's root secrets: the root CA's P-256 scalar and the secp256k1 root key (32 bytes each)."""

    # repr=False: a stray log line or traceback must never print a root secret.
    ca_secret: bytes = field(repr=False)
    k256_secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not is_p256_secret(self.ca_secret):
            raise BadInput("the root CA secret must be a 32-byte P-256 scalar in 1..n-1")
        if not secp256k1.is_secret(self.k256_secret):
            raise BadInput("the root k256 secret must be a 32-byte secp256k1 scalar in 1..n-1")

    @classmethod
    def generate(cls, randomness: Callable[[int], bytes] = os.urandom) -> RootKeys:
        """Fresh root keys; `randomness(n)` returns n random bytes (os.urandom unless a test passes its own)."""
        ca_secret = randomness(32)
        while not is_p256_secret(ca_secret):
            ca_secret = randomness(32)
        k256_secret = randomness(32)
        while not secp256k1.is_secret(k256_secret):
            k256_secret = randomness(32)
        return cls(ca_secret=ca_secret, k256_secret=k256_secret)

    @property
    def k256_public_key(self) -> bytes:
        """Compressed root k256 public key: what `GetMeta.k256_pubkey` and DstackKms `kmsInfo` publish."""
        return secp256k1.public_key(self.k256_secret)

    def ca_public_key_spki(self) -> bytes:
        """DER SubjectPublicKeyInfo of the root CA key; hex of it is the KMS key-provider id in RTMR3."""
        return (
            p256_private_key(self.ca_secret).public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        )


@dataclass(frozen=True)
class AppKeys:
    """The secrets `GetAppKey` returns (the CA certificate and gateway id are left to the KMS service)."""

    disk_crypt_key: bytes = field(repr=False)
    env_crypt_key: bytes = field(repr=False)
    k256_key: bytes = field(repr=False)
    k256_signature: bytes

    @property
    def k256_public_key(self) -> bytes:
        """The app key's compressed public key, the one the KMS's `k256_signature` certifies."""
        return secp256k1.public_key(self.k256_key)


def message_digest(prefix: bytes, app_id: bytes, message: bytes, timestamp: int | None = None) -> bytes:
    """keccak256(prefix ‖ ":" ‖ app_id [‖ timestamp as big-endian u64] ‖ message), dstack's KMS message form."""
    check_app_id(app_id)
    stamp = b"" if timestamp is None else _timestamp_bytes(timestamp)
    return secp256k1.keccak256(prefix + b":" + app_id + stamp + message)


def _timestamp_bytes(timestamp: int) -> bytes:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise BadInput(f"timestamp must fit an unsigned 64-bit integer, got {timestamp}")
    return timestamp.to_bytes(8, "big")


def sign_message(secret: bytes, prefix: bytes, app_id: bytes, message: bytes, timestamp: int | None = None) -> bytes:
    """A 65-byte recoverable signature over `message_digest(...)`, as the KMS signs with its root k256 key."""
    return secp256k1.sign_recoverable(secret, message_digest(prefix, app_id, message, timestamp))


def kms_issued_digest(app_id: bytes, app_public_key: bytes) -> bytes:
    """What the KMS root key signs to certify an app key: keccak256("dstack-kms-issued:" ‖ app_id ‖ pubkey)."""
    return message_digest(KMS_ISSUED_PREFIX, app_id, app_public_key)


def derive_app_k256_key(root: RootKeys, app_id: bytes) -> tuple[bytes, bytes]:
    """The app's secp256k1 key and the root key's 65-byte signature over its compressed public key."""
    check_app_id(app_id)
    key = derive_key(root.k256_secret, [app_id, b"app-key"], 32)
    if not secp256k1.is_secret(key):
        raise BadInput("the derived app key is not a valid secp256k1 secret; dstack rejects this app id too")
    signature = secp256k1.sign_recoverable(root.k256_secret, kms_issued_digest(app_id, secp256k1.public_key(key)))
    return key, signature


@dataclass(frozen=True)
class PerAppKeys:
    """The part of `AppKeys` that depends on the app id alone: every instance of an app gets the same."""

    env_crypt_key: bytes = field(repr=False)
    k256_key: bytes = field(repr=False)
    k256_signature: bytes


def derive_per_app_keys(root: RootKeys, app_id: bytes) -> PerAppKeys:
    """The env key, the app's k256 key and the root's signature over it: pure functions of (root, app_id)."""
    k256_key, k256_signature = derive_app_k256_key(root, app_id)
    return PerAppKeys(env_crypt_key=env_encrypt_secret(root, app_id), k256_key=k256_key, k256_signature=k256_signature)


def derive_app_keys(
    root: RootKeys, app_id: bytes, instance_id: bytes, per_app: Callable[[RootKeys, bytes], PerAppKeys] | None = None
) -> AppKeys:
    """Everything `GetAppKey` derives for (app_id, instance_id); instance_id may be empty (no_instance_id).

    `per_app(root, app_id)` gives the instance-independent part (a cache of `derive_per_app_keys`, say)."""
    check_app_id(app_id)
    shared = (per_app or derive_per_app_keys)(root, app_id)
    return AppKeys(
        disk_crypt_key=derive_dh_secret(root.ca_secret, [app_id, instance_id, b"app-disk-crypt-key"]),
        env_crypt_key=shared.env_crypt_key,
        k256_key=shared.k256_key,
        k256_signature=shared.k256_signature,
    )


def app_ca_secret(root: RootKeys, app_id: bytes) -> bytes:
    """The P-256 scalar of the app CA that signs the app's RA-TLS certificates (`SignCert`)."""
    return derive_p256_secret(root.ca_secret, [check_app_id(app_id), b"app-ca"])


def env_encrypt_secret(root: RootKeys, app_id: bytes) -> bytes:
    """The app's X25519 secret for encrypted env vars, unclamped as dstack stores it (X25519 clamps on use)."""
    return derive_dh_secret(root.ca_secret, [check_app_id(app_id), b"env-encrypt-key"])


def env_encrypt_public_key(root: RootKeys, app_id: bytes) -> bytes:
    """The 32-byte X25519 public key `GetAppEnvEncryptPubKey` serves; deployers encrypt env vars to it."""
    secret = X25519PrivateKey.from_private_bytes(env_encrypt_secret(root, app_id))
    return secret.public_key().public_bytes_raw()


def sign_env_encrypt_public_key(
    root: RootKeys, app_id: bytes, public_key: bytes, timestamp: int
) -> tuple[bytes, bytes]:
    """(signature, signature_v1) for an env pubkey: the legacy form, and the one binding the unix timestamp."""
    signature = sign_message(root.k256_secret, ENV_ENCRYPT_PUBKEY_PREFIX, app_id, public_key)
    signature_v1 = sign_message(root.k256_secret, ENV_ENCRYPT_PUBKEY_PREFIX, app_id, public_key, timestamp)
    return signature, signature_v1
