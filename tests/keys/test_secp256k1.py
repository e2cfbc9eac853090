"""secp256k1 helpers: dstack's 65-byte r ‖ s ‖ recid signatures, checked against eth_keys, and bad input."""

from __future__ import annotations

import pytest
from eth_keys.datatypes import Signature
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.keys import SIMULATOR_APP_PUBLIC_KEY, SIMULATOR_K256_KEY
from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.secp256k1 import SECP256K1_ORDER

DIGEST = secp256k1.keccak256(b"warden")


def test_keccak256_is_ethereums_not_sha3() -> None:
    assert secp256k1.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_simulator_app_key_has_the_public_key_the_go_sdk_expects() -> None:
    assert secp256k1.public_key(SIMULATOR_K256_KEY) == SIMULATOR_APP_PUBLIC_KEY
    uncompressed = secp256k1.public_key(SIMULATOR_K256_KEY, compressed=False)
    assert len(uncompressed) == 65 and secp256k1.normalize_public_key(uncompressed) == SIMULATOR_APP_PUBLIC_KEY


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=SECP256K1_ORDER - 1), st.binary(min_size=32, max_size=32))
def test_signatures_recover_and_match_eth_keys(scalar: int, digest: bytes) -> None:
    secret = scalar.to_bytes(32, "big")
    signature = secp256k1.sign_recoverable(secret, digest)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_ORDER // 2  # low-s, like k256 in dstack
    assert secp256k1.recover(signature, digest) == secp256k1.public_key(secret)
    # an independent implementation reads the same bytes as the same signer (this is what dstack-sdk uses)
    recovered = Signature(signature_bytes=signature).recover_public_key_from_msg_hash(digest)
    assert recovered.to_compressed_bytes() == secp256k1.public_key(secret)


def test_signing_is_deterministic() -> None:
    assert secp256k1.sign_recoverable(SIMULATOR_K256_KEY, DIGEST) == secp256k1.sign_recoverable(
        SIMULATOR_K256_KEY, DIGEST
    )


def test_malformed_signatures_are_refused() -> None:
    good = secp256k1.sign_recoverable(SIMULATOR_K256_KEY, DIGEST)
    cases = {
        "65 bytes": [good[:64], good + b"\x00", b""],
        "recovery id": [good[:64] + bytes([recid]) for recid in (2, 3, 27, 28)],
        "r and s": [bytes(32) + good[32:], good[:32] + SECP256K1_ORDER.to_bytes(32, "big") + good[64:]],
    }
    for phrase, signatures in cases.items():
        for signature in signatures:
            with pytest.raises(BadInput, match=phrase):
                secp256k1.recover(signature, DIGEST)


def test_an_unrecoverable_signature_is_refused() -> None:
    # r = 5 is a valid scalar but no curve point has x = 5 (5^3 + 7 = 132 is not a square mod p)
    signature = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x00"
    with pytest.raises(BadInput, match="no public key can be recovered"):
        secp256k1.recover(signature, DIGEST)


def test_digests_must_be_32_bytes() -> None:
    with pytest.raises(BadInput, match="32 bytes"):
        secp256k1.sign_recoverable(SIMULATOR_K256_KEY, b"short")
    with pytest.raises(BadInput, match="32 bytes"):
        secp256k1.recover(bytes(65), DIGEST + b"\x00")


def test_invalid_secrets_and_points_are_refused() -> None:
    for bad in (bytes(32), SECP256K1_ORDER.to_bytes(32, "big"), b"\x01" * 33):
        assert not secp256k1.is_secret(bad)
        with pytest.raises(BadInput, match="secp256k1 scalar"):
            secp256k1.public_key(bad)
    with pytest.raises(BadInput, match=r"33 .* or 65"):
        secp256k1.normalize_public_key(SIMULATOR_APP_PUBLIC_KEY[:32])
    with pytest.raises(BadInput, match="not a point"):
        secp256k1.normalize_public_key(b"\x02" + (5).to_bytes(32, "big"))
