"""App keys from KMS root keys: dstack's vectors, determinism across replicas, and dstack-sdk's verifier."""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.keys import (
    ENV_APP_ID,
    ENV_PUBLIC_KEY,
    ENV_SIGNATURE,
    ENV_SIGNER,
    SIMULATOR_APP_ID,
    SIMULATOR_APP_PUBLIC_KEY,
    SIMULATOR_K256_SIGNATURE,
    SIMULATOR_KMS_PUBLIC_KEY,
)
from warden.errors import BadInput
from warden.keys import secp256k1
from warden.keys.app_keys import (
    AppKeys,
    RootKeys,
    app_ca_secret,
    derive_app_k256_key,
    derive_app_keys,
    env_encrypt_public_key,
    env_encrypt_secret,
    kms_issued_digest,
    message_digest,
    sign_env_encrypt_public_key,
    sign_message,
)
from warden.keys.kdf import P256_ORDER, derive_dh_secret, derive_key, derive_p256_secret
from warden.keys.signature_chain import recover_env_encrypt_signer

ROOT = RootKeys(ca_secret=bytes.fromhex("11" * 32), k256_secret=bytes.fromhex("22" * 32))
APP_A = bytes.fromhex("5bb4ff9a3837357f19dc176407a5709c62eb6c56")
APP_B = bytes.fromhex("86b0e55f2fa8e4fb69d890f14f54d5612707646e")
INSTANCE_1 = bytes.fromhex("050bf89570575fe8fab4cb8f0a62a9e64efe8ead")
INSTANCE_2 = bytes.fromhex("9ba3255b85b26ec04b5ce853056f7651144ff3b5")


def test_simulator_kms_signature_recovers_the_go_sdks_kms_key() -> None:
    digest = kms_issued_digest(SIMULATOR_APP_ID, SIMULATOR_APP_PUBLIC_KEY)
    assert digest == secp256k1.keccak256(b"dstack-kms-issued:" + SIMULATOR_APP_ID + SIMULATOR_APP_PUBLIC_KEY)
    assert secp256k1.recover(SIMULATOR_K256_SIGNATURE, digest) == SIMULATOR_KMS_PUBLIC_KEY


def test_vmm_cli_env_pubkey_signature_recovers_its_signer() -> None:
    assert recover_env_encrypt_signer(ENV_APP_ID, ENV_PUBLIC_KEY, ENV_SIGNATURE) == ENV_SIGNER


def test_message_digest_layout() -> None:
    app_id = bytes(range(20))
    assert message_digest(b"p", app_id, b"msg") == secp256k1.keccak256(b"p:" + app_id + b"msg")
    stamped = message_digest(b"p", app_id, b"msg", timestamp=0x0102030405060708)
    assert stamped == secp256k1.keccak256(b"p:" + app_id + bytes.fromhex("0102030405060708") + b"msg")
    for bad in (-1, 2**64):
        with pytest.raises(BadInput, match="64-bit"):
            message_digest(b"p", app_id, b"msg", timestamp=bad)


def test_app_keys_follow_dstacks_derivations() -> None:
    keys = derive_app_keys(ROOT, APP_A, INSTANCE_1)
    assert keys.disk_crypt_key == derive_dh_secret(ROOT.ca_secret, [APP_A, INSTANCE_1, b"app-disk-crypt-key"])
    assert keys.env_crypt_key == derive_dh_secret(ROOT.ca_secret, [APP_A, b"env-encrypt-key"])
    assert keys.k256_key == derive_key(ROOT.k256_secret, [APP_A, b"app-key"], 32)
    assert app_ca_secret(ROOT, APP_A) == derive_p256_secret(ROOT.ca_secret, [APP_A, b"app-ca"])
    # the KMS certifies the app key by signing its compressed public key under "dstack-kms-issued"
    signer = secp256k1.recover(keys.k256_signature, kms_issued_digest(APP_A, keys.k256_public_key))
    assert signer == ROOT.k256_public_key
    assert derive_app_k256_key(ROOT, APP_A) == (keys.k256_key, keys.k256_signature)


def test_same_root_and_app_id_give_identical_keys_on_every_replica() -> None:
    replica = RootKeys(ca_secret=bytes(ROOT.ca_secret), k256_secret=bytes(ROOT.k256_secret))
    assert derive_app_keys(replica, APP_A, INSTANCE_1) == derive_app_keys(ROOT, APP_A, INSTANCE_1)
    assert app_ca_secret(replica, APP_A) == app_ca_secret(ROOT, APP_A)
    assert env_encrypt_public_key(replica, APP_A) == env_encrypt_public_key(ROOT, APP_A)


def test_different_app_ids_get_different_keys() -> None:
    a, b = derive_app_keys(ROOT, APP_A, INSTANCE_1), derive_app_keys(ROOT, APP_B, INSTANCE_1)
    for name in ("disk_crypt_key", "env_crypt_key", "k256_key", "k256_signature"):
        assert getattr(a, name) != getattr(b, name), name
    assert app_ca_secret(ROOT, APP_A) != app_ca_secret(ROOT, APP_B)


def test_only_the_disk_key_depends_on_the_instance() -> None:
    one, two = derive_app_keys(ROOT, APP_A, INSTANCE_1), derive_app_keys(ROOT, APP_A, INSTANCE_2)
    no_instance = derive_app_keys(ROOT, APP_A, b"")
    assert len({one.disk_crypt_key, two.disk_crypt_key, no_instance.disk_crypt_key}) == 3
    assert one.env_crypt_key == two.env_crypt_key == no_instance.env_crypt_key
    assert one.k256_key == two.k256_key and one.k256_signature == two.k256_signature


def test_a_different_root_gives_different_keys() -> None:
    other = RootKeys(ca_secret=bytes.fromhex("33" * 32), k256_secret=bytes.fromhex("44" * 32))
    a, b = derive_app_keys(ROOT, APP_A, INSTANCE_1), derive_app_keys(other, APP_A, INSTANCE_1)
    assert a.disk_crypt_key != b.disk_crypt_key and a.k256_key != b.k256_key


def test_env_public_key_is_the_x25519_key_of_the_env_secret() -> None:
    secret = derive_app_keys(ROOT, APP_A, INSTANCE_1).env_crypt_key
    assert secret == env_encrypt_secret(ROOT, APP_A)
    expected = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
    assert env_encrypt_public_key(ROOT, APP_A) == expected and len(expected) == 32


def test_env_pubkey_signatures_recover_the_kms_root_key() -> None:
    public_key = env_encrypt_public_key(ROOT, APP_A)
    signature, signature_v1 = sign_env_encrypt_public_key(ROOT, APP_A, public_key, 1_700_000_000)
    assert recover_env_encrypt_signer(APP_A, public_key, signature) == ROOT.k256_public_key
    assert recover_env_encrypt_signer(APP_A, public_key, signature_v1, 1_700_000_000) == ROOT.k256_public_key
    # the timestamp is bound: another one recovers some other key
    assert recover_env_encrypt_signer(APP_A, public_key, signature_v1, 1_700_000_001) != ROOT.k256_public_key
    assert signature == sign_message(ROOT.k256_secret, b"dstack-env-encrypt-pubkey", APP_A, public_key)


def test_env_pubkey_signatures_verify_with_dstack_sdk() -> None:
    # the module, not the same-named function the package re-exports
    sdk = importlib.import_module("dstack_sdk.verify_env_encrypt_public_key")

    public_key = env_encrypt_public_key(ROOT, APP_A)
    now = int(time.time())
    signature, signature_v1 = sign_env_encrypt_public_key(ROOT, APP_A, public_key, now)
    expected = "0x" + ROOT.k256_public_key.hex()
    assert sdk.verify_env_encrypt_public_key(public_key, signature_v1, APP_A.hex(), now) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert sdk.verify_env_encrypt_public_key_legacy(public_key, signature, "0x" + APP_A.hex()) == expected
        # and the SDK reads dstack's own published vector the way warden does
        legacy = sdk.verify_env_encrypt_public_key_legacy(ENV_PUBLIC_KEY, ENV_SIGNATURE, ENV_APP_ID.hex())
    assert legacy == "0x" + ENV_SIGNER.hex()


def test_app_ids_must_be_20_bytes() -> None:
    calls: list[Callable[[bytes], object]] = [
        lambda app_id: derive_app_keys(ROOT, app_id, INSTANCE_1),
        lambda app_id: app_ca_secret(ROOT, app_id),
        lambda app_id: env_encrypt_public_key(ROOT, app_id),
        lambda app_id: sign_env_encrypt_public_key(ROOT, app_id, bytes(32), 0),
        lambda app_id: sign_message(ROOT.k256_secret, b"p", app_id, b"m"),
    ]
    for call in calls:
        for app_id in (b"", APP_A[:19], APP_A + b"\x00", APP_A.hex().encode()):
            with pytest.raises(BadInput, match=r"^app_id must be 20 bytes$"):
                call(app_id)


def test_root_keys_validate_their_secrets() -> None:
    with pytest.raises(BadInput, match="root CA secret"):
        RootKeys(ca_secret=P256_ORDER.to_bytes(32, "big"), k256_secret=ROOT.k256_secret)
    with pytest.raises(BadInput, match="root k256 secret"):
        RootKeys(ca_secret=ROOT.ca_secret, k256_secret=bytes(32))
    with pytest.raises(BadInput, match="root CA secret"):
        RootKeys(ca_secret=ROOT.ca_secret[:31], k256_secret=ROOT.k256_secret)


def test_generate_skips_invalid_draws() -> None:
    draws: Iterator[bytes] = iter([bytes(32), b"\xff" * 32, b"\x05" * 32, bytes(32), b"\x06" * 32])
    root = RootKeys.generate(lambda n: next(draws))
    assert root == RootKeys(ca_secret=b"\x05" * 32, k256_secret=b"\x06" * 32)
    fresh = RootKeys.generate()
    assert fresh != RootKeys.generate() and len(fresh.k256_public_key) == 33


def test_public_parts_of_the_root() -> None:
    spki = ROOT.ca_public_key_spki()
    # DER SubjectPublicKeyInfo of a P-256 key: the prefix dstack key-provider ids start with
    assert spki.hex().startswith("3059301306072a8648ce3d020106082a8648ce3d03010703420004") and len(spki) == 91
    assert ROOT.k256_public_key == secp256k1.public_key(ROOT.k256_secret)


def test_secrets_stay_out_of_reprs() -> None:
    keys = derive_app_keys(ROOT, APP_A, INSTANCE_1)
    for secret, holder in [
        (ROOT.ca_secret, repr(ROOT)),
        (ROOT.k256_secret, repr(ROOT)),
        (keys.disk_crypt_key, repr(keys)),
        (keys.env_crypt_key, repr(keys)),
        (keys.k256_key, repr(keys)),
    ]:
        assert secret.hex() not in holder and str(secret) not in holder
    assert isinstance(keys, AppKeys)
