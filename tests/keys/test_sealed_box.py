"""Sealed KMS answers: version byte ‖ RFC 9180 HPKE, opened only by the requester's key, refused when altered."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from warden.errors import BadInput
from warden.keys.sealed_box import SEAL_INFO, SEAL_VERSION, new_key_pair, open_sealed, seal

MESSAGE = b'{"k256_key": "00"}'


def test_only_the_requesters_key_opens_the_answer() -> None:
    private, public = new_key_pair()
    sealed = seal(public, MESSAGE)
    assert open_sealed(private, sealed) == MESSAGE
    other, _ = new_key_pair()
    with pytest.raises(BadInput, match="cannot be opened with this key"):
        open_sealed(other, sealed)


def test_each_seal_uses_a_fresh_encapsulated_key() -> None:
    _, public = new_key_pair()
    first, second = seal(public, MESSAGE), seal(public, MESSAGE)
    assert first[1:33] != second[1:33] and first[33:] != second[33:]


def test_the_format_is_a_version_byte_then_plain_rfc9180_hpke() -> None:
    # any RFC 9180 implementation with DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM and this info opens it
    private, public = new_key_pair()
    sealed = seal(public, MESSAGE)
    assert sealed[0] == SEAL_VERSION == 2
    assert len(sealed) == 1 + 32 + len(MESSAGE) + 16
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    assert suite.decrypt(sealed[1:], X25519PrivateKey.from_private_bytes(private), info=SEAL_INFO) == MESSAGE
    # and what such an implementation seals (with the version byte in front) opens here
    foreign = suite.encrypt(MESSAGE, X25519PrivateKey.from_private_bytes(private).public_key(), info=SEAL_INFO)
    assert open_sealed(private, bytes([SEAL_VERSION]) + foreign) == MESSAGE


@pytest.mark.parametrize("index", [1, 20, 32, 33, 40, -1])  # encapsulated key, ciphertext, tag
def test_any_altered_byte_is_refused(index: int) -> None:
    private, public = new_key_pair()
    sealed = bytearray(seal(public, MESSAGE))
    sealed[index] ^= 0x01
    with pytest.raises(BadInput, match="wrong key or altered"):
        open_sealed(private, bytes(sealed))


@pytest.mark.parametrize("version", [0, 1, 3, 255])
def test_another_format_version_is_named_not_guessed(version: int) -> None:
    private, public = new_key_pair()
    sealed = bytes([version]) + seal(public, MESSAGE)[1:]
    with pytest.raises(BadInput, match=f"format version {version}; this warden opens version 2"):
        open_sealed(private, sealed)


@pytest.mark.parametrize("sealed", [b"", bytes([SEAL_VERSION]), bytes([SEAL_VERSION]) + bytes(47)])
def test_truncated_answers_are_refused(sealed: bytes) -> None:
    private, _ = new_key_pair()
    with pytest.raises(BadInput, match=r"empty|too short"):
        open_sealed(private, sealed)


def test_a_requester_key_of_the_wrong_size_is_bad_input() -> None:
    with pytest.raises(BadInput, match="32-byte X25519 public key"):
        seal(bytes(31), MESSAGE)
