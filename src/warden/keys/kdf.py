"""The derivation primitives every dstack key comes from: HKDF-SHA256 and the P-256 helpers built on it.

dstack's KMS derives all app secrets from its two root keys with these functions, so warden must reproduce
them byte for byte; a single differing byte would give an app a different disk or env key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from warden.errors import BadInput

# dstack fixes the HKDF salt to this constant for every derivation (it predates the KMS: RA-TLS named it).
HKDF_SALT = b"RATLS"

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derive_key(ikm: bytes, context: Sequence[bytes], length: int = 32) -> bytes:
    """HKDF-SHA256 with salt b"RATLS" and info = the context parts concatenated (dstack's `derive_key`).

    The parts are joined without separators or length prefixes, exactly as dstack feeds them to HKDF,
    so [b"ab", b"c"] and [b"a", b"bc"] derive the same key; callers keep fixed-length parts first.
    """
    if not 1 <= length <= 255 * 32:
        raise BadInput(f"HKDF-SHA256 output length must be 1..8160 bytes, got {length}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=b"".join(context)).derive(ikm)


def is_p256_secret(secret: bytes) -> bool:
    """Whether these 32 bytes are a usable P-256 private scalar (1 <= d < n)."""
    return len(secret) == 32 and 0 < int.from_bytes(secret, "big") < P256_ORDER


def derive_p256_secret(secret: bytes, context: Sequence[bytes]) -> bytes:
    """The P-256 secret scalar dstack's `derive_p256_key_pair` derives from a parent P-256 scalar.

    Raises BadInput in the ~2^-32 case that the derived bytes are not a valid scalar: dstack fails there
    too rather than reducing the value, so there is no compatible key to return.
    """
    if not is_p256_secret(secret):
        raise BadInput("the parent P-256 secret must be a 32-byte scalar in 1..n-1")
    derived = derive_key(secret, context, 32)
    if not is_p256_secret(derived):
        raise BadInput("the derived bytes are not a valid P-256 secret; dstack rejects this context too")
    return derived


def p256_public_key(secret: bytes, compressed: bool = False) -> bytes:
    """SEC1 encoding of the P-256 public key for a secret scalar (uncompressed by default)."""
    point_format = PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
    return p256_private_key(secret).public_key().public_bytes(Encoding.X962, point_format)


def p256_pkcs8_der(secret: bytes) -> bytes:
    """The PKCS#8 DER of a P-256 key, byte for byte as ring/rcgen/p256 write it.

    `derive_dh_secret` hashes this encoding, so its layout is part of dstack's key derivation: the curve is
    named in the AlgorithmIdentifier only, the inner ECPrivateKey carries the 32-byte scalar (leading zeros
    kept) and the uncompressed public key. OpenSSL's PKCS#8 writer produces exactly that; dstack's fixed
    test vector pins it (tests/keys/test_kdf.py).
    """
    return p256_private_key(secret).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def p256_private_key(secret: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key with this 32-byte secret scalar; BadInput unless 1 <= scalar < n."""
    if not is_p256_secret(secret):
        raise BadInput("a P-256 secret must be a 32-byte scalar in 1..n-1")
    return ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())


def derive_dh_secret(secret: bytes, context: Sequence[bytes]) -> bytes:
    """dstack's `derive_dh_secret`: sha256 of the PKCS#8 DER of the P-256 key derived for `context`.

    Hashing a DER encoding is a historical choice dstack keeps for compatibility; disk and env keys use it.
    """
    return hashlib.sha256(p256_pkcs8_der(derive_p256_secret(secret, context))).digest()
