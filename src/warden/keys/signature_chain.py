"""Check a `GetKey` signature chain: which app key signed the derived key, and which KMS root key issued it.

A chain only proves something against a trusted KMS root key (`DstackKms.kmsInfo.k256Pubkey`): any
well-formed signatures recover *some* key, so recovery alone never means "valid".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.app_keys import ENV_ENCRYPT_PUBKEY_PREFIX, check_app_id, kms_issued_digest, message_digest
from warden.keys.get_key import purpose_digest


@dataclass(frozen=True)
class ChainCheck:
    """The compressed public keys recovered from a chain: the app key (sig 0) and the KMS root key (sig 1)."""

    app_public_key: bytes
    kms_public_key: bytes

    def issued_by(self, expected_kms_public_key: bytes) -> bool:
        """Whether the chain leads to this KMS root key (33- or 65-byte SEC1; compared in compressed form)."""
        expected = secp256k1.normalize_public_key(expected_kms_public_key, "KMS public key")
        return expected == self.kms_public_key


def verify_signature_chain(app_id: bytes, public_key: bytes, purpose: str, chain: Sequence[bytes]) -> ChainCheck:
    """Recover the app key and the KMS root key behind a `GetKey` result.

    `public_key` is the derived key (any SEC1 form; dstack signs its compressed hex). Raises BadInput on a
    malformed chain: not exactly two signatures, wrong lengths, a bad recovery id, or an unrecoverable one.
    Compare the result with the registered KMS key (`ChainCheck.issued_by`) before trusting it.
    """
    check_app_id(app_id)
    derived = secp256k1.normalize_public_key(public_key, "derived public key")
    if len(chain) != 2:
        raise BadInput(f"a GetKey signature chain has 2 signatures (app key, KMS), got {len(chain)}")
    app_signature, kms_signature = chain
    app_public_key = _recover(app_signature, purpose_digest(purpose, derived), "app-key signature (chain[0])")
    kms_public_key = _recover(kms_signature, kms_issued_digest(app_id, app_public_key), "KMS signature (chain[1])")
    return ChainCheck(app_public_key=app_public_key, kms_public_key=kms_public_key)


def recover_env_encrypt_signer(
    app_id: bytes, public_key: bytes, signature: bytes, timestamp: int | None = None
) -> bytes:
    """The compressed key that signed an env-encrypt public key (`signature`, or `signature_v1` with its timestamp).

    Like dstack-sdk's verifiers this only recovers; the caller checks the key and the timestamp's age.
    """
    digest = message_digest(ENV_ENCRYPT_PUBKEY_PREFIX, app_id, public_key, timestamp)
    return _recover(signature, digest, "env pubkey signature")


def _recover(signature: bytes, digest: bytes, what: str) -> bytes:
    try:
        return secp256k1.recover(signature, digest)
    except BadInput as exc:
        raise BadInput(f"{what}: {exc}") from None
