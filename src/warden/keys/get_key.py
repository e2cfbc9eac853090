"""The guest agent's `GetKey(path, purpose)`: a key derived from the app key, with its chain back to the KMS."""

from __future__ import annotations

from dataclasses import dataclass, field

from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.kdf import derive_key


@dataclass(frozen=True)
class GetKeyResult:
    """The derived secret, its compressed public key, and [app-key signature, KMS signature]."""

    key: bytes = field(repr=False)
    public_key: bytes
    signature_chain: list[bytes]


def purpose_digest(purpose: str, public_key: bytes) -> bytes:
    """What the app key signs for a derived key: keccak256(purpose ‖ ":" ‖ lowercase hex of the compressed key)."""
    return secp256k1.keccak256(f"{purpose}:{public_key.hex()}".encode())


def get_key(app_k256_key: bytes, k256_signature: bytes, path: str, purpose: str) -> GetKeyResult:
    """Reproduce `GetKey` for the secp256k1 algorithm.

    The key depends on `path` only; `purpose` only enters the signature. `k256_signature` is the KMS's
    signature over the app key (`AppKeys.k256_signature`); it may be empty for apps without a KMS, as in dstack.
    """
    if not secp256k1.is_secret(app_k256_key):
        raise BadInput("the app key must be a 32-byte secp256k1 scalar in 1..n-1")
    if len(k256_signature) not in (0, secp256k1.SIGNATURE_LENGTH):
        raise BadInput(f"the KMS signature must be 65 bytes (or empty without a KMS), got {len(k256_signature)}")
    key = derive_key(app_k256_key, [path.encode()], 32)
    if not secp256k1.is_secret(key):
        # probability ~2^-128; dstack fails the request the same way, so there is no compatible key to give
        raise BadInput(f"path {path!r} derives an invalid secp256k1 secret; use another path")
    public_key = secp256k1.public_key(key)
    signature = secp256k1.sign_recoverable(app_k256_key, purpose_digest(purpose, public_key))
    return GetKeyResult(key=key, public_key=public_key, signature_chain=[signature, k256_signature])
