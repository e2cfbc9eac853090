"""secp256k1 as dstack uses it: SEC1 public keys, and recoverable ECDSA over Keccak-256 digests.

Signatures are 65 bytes r ‖ s ‖ recid with recid 0 or 1 (not Ethereum's 27/28). libsecp256k1 signs with
RFC 6979 nonces and low-s, like RustCrypto's `k256` in dstack, so the same key and digest give the same bytes.
"""

from __future__ import annotations

import coincurve
from eth_utils import keccak

from warden.errors import BadInput

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNATURE_LENGTH = 65


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not NIST SHA3-256): every dstack signature signs such a digest."""
    return bytes(keccak(data))


def is_secret(secret: bytes) -> bool:
    """Whether these bytes are a usable secp256k1 private scalar (32 bytes, 1 <= d < n)."""
    return len(secret) == 32 and 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER


def _private_key(secret: bytes, what: str) -> coincurve.PrivateKey:
    if not is_secret(secret):
        raise BadInput(f"{what} must be a 32-byte secp256k1 scalar in 1..n-1")
    return coincurve.PrivateKey(secret)


def public_key(secret: bytes, compressed: bool = True) -> bytes:
    """SEC1 public key of a secret: 33 bytes compressed (dstack's form) or 65 bytes uncompressed."""
    return _private_key(secret, "a secp256k1 secret").public_key.format(compressed=compressed)


def normalize_public_key(key: bytes, what: str = "public key") -> bytes:
    """Any valid SEC1 encoding (33 or 65 bytes) as the 33-byte compressed form dstack signs over."""
    if len(key) not in (33, 65):
        raise BadInput(f"invalid {what}: expected 33 (compressed) or 65 (uncompressed) bytes, got {len(key)}")
    try:
        return coincurve.PublicKey(key).format(compressed=True)
    except ValueError:
        raise BadInput(f"invalid {what}: not a point on secp256k1") from None


def _check_digest(digest: bytes) -> None:
    if len(digest) != 32:
        raise BadInput(f"a digest must be 32 bytes, got {len(digest)}")


def sign_recoverable(secret: bytes, digest: bytes) -> bytes:
    """Recoverable ECDSA over a 32-byte digest (no further hashing): 65 bytes r ‖ s ‖ recid."""
    _check_digest(digest)
    signature = _private_key(secret, "a signing key").sign_recoverable(digest, hasher=None)
    return bytes(signature)


def recover(signature: bytes, digest: bytes) -> bytes:
    """The compressed public key that made a 65-byte r ‖ s ‖ recid signature over a 32-byte digest.

    Raises BadInput for a wrong length, a recid other than 0/1, r or s out of range, or a signature
    from which no key can be recovered.
    """
    _check_digest(digest)
    if len(signature) != SIGNATURE_LENGTH:
        raise BadInput(f"a signature must be {SIGNATURE_LENGTH} bytes (r ‖ s ‖ recid), got {len(signature)}")
    recid = signature[64]
    if recid not in (0, 1):
        # dstack's signers only ever emit 0 or 1; 27/28 would mean an Ethereum-style signature was passed.
        raise BadInput(f"invalid signature recovery id {recid}: dstack signatures end in 0 or 1")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s < SECP256K1_ORDER):
        raise BadInput("invalid signature: r and s must be in 1..n-1")
    try:
        recovered = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except ValueError:
        raise BadInput("invalid signature: no public key can be recovered from it") from None
    return recovered.format(compressed=True)
