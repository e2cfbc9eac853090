"""GetKey and its signature chain: the Go SDK's simulator check, a full KMS round trip, tampering, bad input."""

from __future__ import annotations

import pytest

from tests.keys import (
    SIMULATOR_APP_ID,
    SIMULATOR_APP_PUBLIC_KEY,
    SIMULATOR_K256_KEY,
    SIMULATOR_K256_SIGNATURE,
    SIMULATOR_KMS_PUBLIC_KEY,
    SIMULATOR_PATH,
    SIMULATOR_PURPOSE,
)
from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.app_keys import RootKeys, derive_app_keys
from warden.keys.get_key import GetKeyResult, get_key, purpose_digest
from warden.keys.kdf import derive_key
from warden.keys.secp256k1 import SECP256K1_ORDER
from warden.keys.signature_chain import ChainCheck, verify_signature_chain

APP_ID = bytes.fromhex("86b0e55f2fa8e4fb69d890f14f54d5612707646e")
# warden's own GetKey output for the simulator app key at SIMULATOR_PATH / SIMULATOR_PURPOSE, recorded to catch
# accidental changes: dstack publishes no bytes for it (its Go test checks only the recovered keys)
RECORDED_KEY = "b9fbb7171185c421c58610a2acba8ceae93623ae47815618cbad1e98fc042cb7"
RECORDED_APP_SIGNATURE = (
    "f50c51735a97072f0c98125ed61fc84e2fdb36e95990b9e57337dadc0e2a9712"
    "227f04e07209faecb8891d59ec144a6c13e411dc90b3423f28071bd3fe11978d01"
)


def simulator_get_key(path: str = SIMULATOR_PATH, purpose: str = SIMULATOR_PURPOSE) -> GetKeyResult:
    return get_key(SIMULATOR_K256_KEY, SIMULATOR_K256_SIGNATURE, path, purpose)


def test_simulator_get_key_chain_leads_to_the_go_sdks_keys() -> None:
    # what sdk/go/dstack/client_web3_test.go checks against the simulator, computed without one
    result = simulator_get_key()
    assert result.key == derive_key(SIMULATOR_K256_KEY, [SIMULATOR_PATH.encode()], 32)
    assert result.public_key == secp256k1.public_key(result.key)
    assert result.signature_chain[1] == SIMULATOR_K256_SIGNATURE
    check = verify_signature_chain(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, result.signature_chain)
    assert check == ChainCheck(app_public_key=SIMULATOR_APP_PUBLIC_KEY, kms_public_key=SIMULATOR_KMS_PUBLIC_KEY)
    assert check.issued_by(SIMULATOR_KMS_PUBLIC_KEY)
    assert not check.issued_by(SIMULATOR_APP_PUBLIC_KEY)


def test_simulator_get_key_regression_bytes() -> None:
    result = simulator_get_key()
    assert result.key.hex() == RECORDED_KEY
    assert result.signature_chain[0].hex() == RECORDED_APP_SIGNATURE


def test_purpose_digest_signs_the_lowercase_hex_of_the_compressed_key() -> None:
    result = simulator_get_key()
    text = f"{SIMULATOR_PURPOSE}:{result.public_key.hex()}"
    assert text == text.lower() and len(text) == len(SIMULATOR_PURPOSE) + 1 + 66
    assert purpose_digest(SIMULATOR_PURPOSE, result.public_key) == secp256k1.keccak256(text.encode())


def test_purpose_changes_only_the_signature() -> None:
    signing, other = simulator_get_key(purpose="signing"), simulator_get_key(purpose="encryption")
    assert signing.key == other.key and signing.public_key == other.public_key
    assert signing.signature_chain[0] != other.signature_chain[0]
    assert simulator_get_key(path="/other").key != signing.key


def test_a_full_round_trip_from_root_keys() -> None:
    root = RootKeys(ca_secret=b"\x07" * 32, k256_secret=b"\x08" * 32)
    app = derive_app_keys(root, APP_ID, bytes(20))
    result = get_key(app.k256_key, app.k256_signature, "wallet/ethereum", "signing")
    check = verify_signature_chain(APP_ID, result.public_key, "signing", result.signature_chain)
    assert check.app_public_key == app.k256_public_key
    assert check.kms_public_key == root.k256_public_key
    assert check.issued_by(secp256k1.public_key(root.k256_secret, compressed=False))


def test_uncompressed_derived_key_is_accepted() -> None:
    result = simulator_get_key()
    uncompressed = secp256k1.public_key(result.key, compressed=False)
    check = verify_signature_chain(SIMULATOR_APP_ID, uncompressed, SIMULATOR_PURPOSE, result.signature_chain)
    assert check.issued_by(SIMULATOR_KMS_PUBLIC_KEY)


def _issued(app_id: bytes, public_key: bytes, purpose: str, chain: list[bytes]) -> bool:
    """Whether a chain still leads to the simulator KMS; a tampered one may also be refused as malformed."""
    try:
        return verify_signature_chain(app_id, public_key, purpose, chain).issued_by(SIMULATOR_KMS_PUBLIC_KEY)
    except BadInput:
        return False


def test_tampering_breaks_the_chain() -> None:
    result = simulator_get_key()
    chain = result.signature_chain
    assert _issued(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, chain)
    assert not _issued(SIMULATOR_APP_ID, result.public_key, "another-purpose", chain)
    assert not _issued(SIMULATOR_APP_ID, simulator_get_key(path="/other/path").public_key, SIMULATOR_PURPOSE, chain)
    assert not _issued(bytes(20), result.public_key, SIMULATOR_PURPOSE, chain)
    for index in (0, 1):
        for position in (0, 40):
            tampered = [bytearray(sig) for sig in chain]
            tampered[index][position] ^= 0x01
            assert not _issued(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, [bytes(t) for t in tampered])
    # a flipped recovery id recovers the other candidate key, never the real one
    flipped = bytes(chain[0][:64]) + bytes([chain[0][64] ^ 1])
    assert not _issued(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, [flipped, chain[1]])
    # swapped signatures are a different statement altogether
    assert not _issued(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, [chain[1], chain[0]])


def test_malformed_chains_are_refused_with_the_reason() -> None:
    result = simulator_get_key()
    app_sig, kms_sig = result.signature_chain
    cases: list[tuple[bytes, bytes, list[bytes], str]] = [
        (SIMULATOR_APP_ID[:19], result.public_key, [app_sig, kms_sig], "app_id must be 20 bytes"),
        (SIMULATOR_APP_ID, result.public_key[:32], [app_sig, kms_sig], "derived public key"),
        (SIMULATOR_APP_ID, result.public_key, [app_sig], "2 signatures"),
        (SIMULATOR_APP_ID, result.public_key, [app_sig, kms_sig, kms_sig], "2 signatures"),
        (SIMULATOR_APP_ID, result.public_key, [app_sig[:64], kms_sig], r"chain\[0\].*65 bytes"),
        (SIMULATOR_APP_ID, result.public_key, [app_sig, kms_sig[:64] + b"\x1b"], r"chain\[1\].*recovery id 27"),
        (SIMULATOR_APP_ID, result.public_key, [bytes(65), kms_sig], r"chain\[0\].*r and s"),
    ]
    for app_id, public_key, chain, phrase in cases:
        with pytest.raises(BadInput, match=phrase):
            verify_signature_chain(app_id, public_key, SIMULATOR_PURPOSE, chain)
    with pytest.raises(BadInput, match="KMS public key"):
        verify_signature_chain(SIMULATOR_APP_ID, result.public_key, SIMULATOR_PURPOSE, [app_sig, kms_sig]).issued_by(
            b"\x02" * 10
        )


def test_get_key_refuses_bad_keys_and_signatures() -> None:
    with pytest.raises(BadInput, match="app key"):
        get_key(bytes(32), SIMULATOR_K256_SIGNATURE, "p", "q")
    with pytest.raises(BadInput, match="KMS signature must be 65 bytes"):
        get_key(SIMULATOR_K256_KEY, SIMULATOR_K256_SIGNATURE[:64], "p", "q")
    # without a KMS (dstack's local key providers) the app key is unsigned and the chain ends in b""
    assert get_key(SIMULATOR_K256_KEY, b"", "p", "q").signature_chain[1] == b""


def test_a_path_deriving_an_invalid_scalar_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # no real path is known to hit this (~2^-128), so the derivation is forced to n
    monkeypatch.setattr(
        "warden.keys.get_key.derive_key", lambda ikm, context, length=32: SECP256K1_ORDER.to_bytes(32, "big")
    )
    with pytest.raises(BadInput, match="invalid secp256k1 secret; use another path"):
        simulator_get_key()
