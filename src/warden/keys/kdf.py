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
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warden.errors import BadInput

# dstack fixes the HKDF salt to this constant for every derivation (it predates the KMS: RA-TLS named it).
HKDF_SALT = b"RATLS"

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# PKCS#8 PrivateKeyInfo for a P-256 key as RustCrypto's `p256` (and hence ring/rcgen) encodes it:
#   SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, OID prime256v1 },
#              OCTET STRING { SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING <32-byte scalar>,
#                                                           [1] BIT STRING <uncompressed point> } } }
# The curve parameters ([0]) are omitted inside ECPrivateKey and the public key is included. Every
# length is fixed for P-256, so the encoding is these two constant pieces around the scalar and point.
_PKCS8_BEFORE_SECRET = bytes.fromhex(
    "308187"  # PrivateKeyInfo, 135 bytes
    "020100"  # version 0
    "301306072a8648ce3d020106082a8648ce3d030107"  # id-ecPublicKey, prime256v1
    "046d"  # privateKey OCTET STRING, 109 bytes
    "306b"  # ECPrivateKey, 107 bytes
    "020101"  # version 1
    "0420"  # privateKey OCTET STRING, 32 bytes
)
_PKCS8_BEFORE_POINT = bytes.fromhex(
    "a144"  # [1] publicKey, 68 bytes
    "034200"  # BIT STRING, 66 bytes, no unused bits
)


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
    if not is_p256_secret(secret):
        raise BadInput("a P-256 secret must be a 32-byte scalar in 1..n-1")
    key = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
    point_format = PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
    return key.public_key().public_bytes(Encoding.X962, point_format)


def p256_pkcs8_der(secret: bytes) -> bytes:
    """The PKCS#8 DER of a P-256 key exactly as ring/rcgen/p256 write it (public key included).

    This exact byte string matters because `derive_dh_secret` hashes it: the layout is pinned by dstack's
    own fixed test vector, so it is assembled here explicitly rather than left to a library's choices.
    """
    return _PKCS8_BEFORE_SECRET + secret + _PKCS8_BEFORE_POINT + p256_public_key(secret)


def derive_dh_secret(secret: bytes, context: Sequence[bytes]) -> bytes:
    """dstack's `derive_dh_secret`: sha256 of the PKCS#8 DER of the P-256 key derived for `context`.

    Hashing a DER encoding is a historical choice dstack keeps for compatibility; disk and env keys use it.
    """
    return hashlib.sha256(p256_pkcs8_der(derive_p256_secret(secret, context))).digest()
