"""`warden kms info` and `warden kms os-image add|remove|list`."""

from __future__ import annotations

from tests.support.chain import STRANGER_KEY
from tests.support.cli import assert_clean_error, warden
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

IMAGE_A = "0x" + "a1" * 32
IMAGE_B = "b2" * 32


def kms_env(anvil: Anvil, kms: KmsRegistry, key: str = DEV_PRIVATE_KEY) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": key, "WARDEN_KMS": kms.address}


def test_add_skips_what_is_already_allowed_and_lists_from_events(anvil: Anvil, kms: KmsRegistry) -> None:
    env = kms_env(anvil, kms)
    first = warden("kms", "os-image", "add", IMAGE_A, "--wait", "--json", env=env)
    assert first.exit_code == 0, first.stderr
    assert first.json()["results"][0]["status"] == "added"

    again = warden("kms", "os-image", "add", IMAGE_A, IMAGE_B, "--wait", "--json", env=env)
    assert again.exit_code == 0, again.stderr
    statuses = {r["os_image_hash"]: (r["status"], r["tx"]) for r in again.json()["results"]}
    assert statuses[IMAGE_A] == ("already-allowed", None)
    assert statuses["0x" + IMAGE_B][0] == "added"
    assert kms.is_os_image_allowed(bytes.fromhex(IMAGE_B))

    removed = warden("kms", "os-image", "remove", IMAGE_A, "--wait", "--json", env=env)
    assert removed.json()["results"][0]["status"] == "removed"
    assert warden("kms", "os-image", "remove", IMAGE_A, "--wait", "--json", env=env).json()["results"][0]["status"] == (
        "not-allowed"
    )

    listed = warden("kms", "os-image", "list", "--json", env={"ETH_RPC_URL": anvil.url, "WARDEN_KMS": kms.address})
    assert listed.exit_code == 0, listed.stderr
    rows = {r["os_image_hash"]: r["allowed"] for r in listed.json()["os_images"]}
    assert rows == {IMAGE_A: False, "0x" + IMAGE_B: True}


def test_os_image_added_outside_warden_is_listed(anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    from tests.support.chain import send

    send(chain, owner, kms.add_os_image(bytes.fromhex(IMAGE_B)))
    listed = warden("kms", "os-image", "list", "--kms", kms.address, "--json", env={"ETH_RPC_URL": anvil.url})
    assert listed.json()["os_images"][0]["os_image_hash"] == "0x" + IMAGE_B


def test_non_owner_cannot_change_os_images(anvil: Anvil, chain: Chain, kms: KmsRegistry, stranger: Signer) -> None:
    nonce = chain.nonce(stranger.address)
    run = warden("kms", "os-image", "add", IMAGE_A, env=kms_env(anvil, kms, STRANGER_KEY))
    assert_clean_error(run, 2, "is not the owner", f"KMS {kms.address}")
    assert chain.nonce(stranger.address) == nonce
    assert not kms.is_os_image_allowed(bytes.fromhex(IMAGE_A[2:]))


def test_bad_hashes_are_refused(anvil: Anvil, kms: KmsRegistry) -> None:
    env = kms_env(anvil, kms)
    assert_clean_error(warden("kms", "os-image", "add", "0x1234", env=env), 2, "expected 32 bytes")
    assert_clean_error(warden("kms", "os-image", "add", IMAGE_A, IMAGE_A, env=env), 2, "given twice")


def test_kms_info(anvil: Anvil, kms: KmsRegistry, owner: Signer) -> None:
    run = warden("kms", "info", "--json", env={"ETH_RPC_URL": anvil.url, "WARDEN_KMS": kms.address})
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["kms"] == kms.address and data["owner"] == owner.address
    assert data["app_implementation"] == kms.info().app_implementation
