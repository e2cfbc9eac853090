"""HKDF and the P-256 helpers: dstack's fixed derive_dh_secret vector, and the PKCS#8 bytes it depends on."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.keys import DH_CONTEXT, DH_ROOT_PKCS8, DH_SECRET
from warden.errors import BadInput
from warden.keys.kdf import (
    P256_ORDER,
    derive_dh_secret,
    derive_key,
    derive_p256_secret,
    is_p256_secret,
    p256_pkcs8_der,
    p256_public_key,
)


def _scalar_of(der: bytes) -> bytes:
    key = load_der_private_key(der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.private_numbers().private_value.to_bytes(32, "big")


def _rfc5869(ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 written out from RFC 5869 with dstack's salt: an independent check of derive_key."""
    prk = hmac.new(b"RATLS", ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_derive_dh_secret_matches_dstacks_fixed_vector() -> None:
    assert derive_dh_secret(_scalar_of(DH_ROOT_PKCS8), DH_CONTEXT) == DH_SECRET


def test_pkcs8_encoding_is_byte_identical_to_rcgens() -> None:
    # dstack's root key DER came out of rcgen; re-encoding its scalar must reproduce it exactly
    assert p256_pkcs8_der(_scalar_of(DH_ROOT_PKCS8)) == DH_ROOT_PKCS8


@pytest.mark.parametrize("scalar", [1, 2**8, 2**64 + 5, 2**255, P256_ORDER - 1])
def test_pkcs8_layout_is_rcgens_for_any_scalar(scalar: int) -> None:
    """Small scalars keep their leading zero bytes and every key has rcgen's framing around scalar and point."""
    secret = scalar.to_bytes(32, "big")
    der = p256_pkcs8_der(secret)
    assert len(der) == len(DH_ROOT_PKCS8) == 138
    assert der[:36] == DH_ROOT_PKCS8[:36]  # PrivateKeyInfo, id-ecPublicKey + prime256v1, ECPrivateKey v1
    assert der[36:68] == secret
    assert der[68:73] == DH_ROOT_PKCS8[68:73]  # [1] publicKey BIT STRING
    assert der[73:] == p256_public_key(secret)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=64), st.lists(st.binary(max_size=24), max_size=4), st.integers(min_value=1, max_value=200))
def test_derive_key_is_hkdf_sha256_with_the_ratls_salt(ikm: bytes, context: list[bytes], length: int) -> None:
    assert derive_key(ikm, context, length) == _rfc5869(ikm, b"".join(context), length)


def test_context_parts_are_concatenated_without_separators() -> None:
    assert derive_key(b"ikm", [b"ab", b"c"]) == derive_key(b"ikm", [b"a", b"bc"]) == derive_key(b"ikm", [b"abc"])
    assert derive_key(b"ikm", [b"abc"]) != derive_key(b"ikm", [b"abd"])


def test_derive_key_refuses_lengths_hkdf_cannot_produce() -> None:
    assert len(derive_key(b"ikm", [b"x"], 255 * 32)) == 255 * 32
    for length in (0, 255 * 32 + 1):
        with pytest.raises(BadInput, match="output length"):
            derive_key(b"ikm", [b"x"], length)


def test_derive_p256_secret_is_the_32_byte_hkdf_output() -> None:
    root = _scalar_of(DH_ROOT_PKCS8)
    derived = derive_p256_secret(root, DH_CONTEXT)
    assert derived == derive_key(root, DH_CONTEXT, 32)
    assert is_p256_secret(derived)
    assert derive_dh_secret(root, DH_CONTEXT) == hashlib.sha256(p256_pkcs8_der(derived)).digest()


def test_invalid_p256_scalars_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (bytes(32), P256_ORDER.to_bytes(32, "big"), b"\x01" * 31):
        assert not is_p256_secret(bad)
        with pytest.raises(BadInput, match="P-256 secret"):
            derive_p256_secret(bad, [b"x"])
        with pytest.raises(BadInput, match="P-256 secret"):
            p256_public_key(bad)
    # a derivation landing on n or above (~2^-32 per context) is an error, as in dstack, not a reduced key
    monkeypatch.setattr("warden.keys.kdf.derive_key", lambda ikm, context, length=32: b"\xff" * 32)
    with pytest.raises(BadInput, match="derived bytes"):
        derive_p256_secret(b"\x01" * 32, [b"x"])


def test_p256_public_key_forms() -> None:
    secret = (7).to_bytes(32, "big")
    uncompressed = p256_public_key(secret)
    compressed = p256_public_key(secret, compressed=True)
    assert len(uncompressed) == 65 and uncompressed[0] == 4
    assert len(compressed) == 33 and compressed[1:] == uncompressed[1:33]
