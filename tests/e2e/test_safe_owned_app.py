"""Runbook "a Safe-owned app": warden writes the Transaction Builder batch, a real Safe on anvil executes it.

The app's owner is a Safe proxy (1.4.1, deployed from the Safe project's own compiled contracts). warden
sends nothing for it: it writes a batch file, which is then carried out the way the Safe app does it (one
MultiSendCallOnly DELEGATECALL signed by the owners), and the change is read back with warden.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.chain import deploy_app
from tests.support.cli import WARDEN_ENV, assert_clean_error, ok, warden
from tests.support.safe import (
    Safe,
    SafeContracts,
    create_safe,
    deploy_safe_contracts,
    exec_batch,
    exec_batch_request,
    send_exec,
)
from warden.chain.app import AppAuth
from warden.chain.connection import Chain, ContractReverted
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.chain.tx import simulate
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

A, B, C = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3))
HASH_1, HASH_2 = (bytes([n]) * 32 for n in (0x11, 0x22))


def read_only(anvil: Anvil) -> dict[str, str]:
    """What the operator of a Safe-owned app needs for a batch: a node, and no key at all."""
    return {"ETH_RPC_URL": anvil.url}


def listed_devices(anvil: Anvil, app: AppAuth) -> list[str]:
    data = ok(warden("allow-devices", "list", app.address, "--json", env=read_only(anvil)))
    assert data["owner"] == app.owner()
    return [d["device_id"] for d in data["devices"] if d["allowed"]]


def listed_hashes(anvil: Anvil, app: AppAuth) -> list[str]:
    data = ok(warden("compose-hashes", "list", app.address, "--json", env=read_only(anvil)))
    return [h["compose_hash"] for h in data["compose_hashes"]]


def load_batch(path: Path) -> dict[str, Any]:
    batch: dict[str, Any] = json.loads(path.read_text())
    return batch


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited warden configuration; a private WARDEN_HOME (its log cache) per test."""
    for name in WARDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARDEN_HOME", str(tmp_path / "warden-home"))


@pytest.fixture(scope="module")
def safe_contracts(chain: Chain, owner: Signer) -> SafeContracts:
    return deploy_safe_contracts(chain, owner)


@pytest.fixture
def safe_2_of_3(chain: Chain, owner: Signer, stranger: Signer, third: Signer, safe_contracts: SafeContracts) -> Safe:
    owners = [owner.address, stranger.address, third.address]
    safe = create_safe(chain, owner, safe_contracts, owners, 2, salt=chain.block_number())
    assert (safe.owners(), safe.threshold(), safe.nonce()) == (owners, 2, 0)
    return safe


@pytest.fixture
def safe_1_of_1(chain: Chain, owner: Signer, third: Signer, safe_contracts: SafeContracts) -> Safe:
    safe = create_safe(chain, owner, safe_contracts, [third.address], 1, salt=chain.block_number())
    assert (safe.owners(), safe.threshold()) == ([third.address], 1)
    return safe


def test_device_batch_written_by_warden_is_executed_by_a_2_of_3_safe(
    anvil: Anvil,
    chain: Chain,
    owner: Signer,
    stranger: Signer,
    third: Signer,
    kms: KmsRegistry,
    safe_contracts: SafeContracts,
    safe_2_of_3: Safe,
    tmp_path: Path,
) -> None:
    app = deploy_app(chain, owner, kms, owner=safe_2_of_3.address, device_id=A)
    assert app.owner() == safe_2_of_3.address
    sent_before = [chain.nonce(s.address) for s in (owner, stranger, third)]

    batch_file = tmp_path / "add-devices.json"
    args = [
        "allow-devices",
        "add",
        app.address,
        hex0x(B),
        hex0x(A),
        hex0x(C),
        "--safe-batch",
        str(batch_file),
        "--json",
    ]
    data = ok(warden(*args, env=read_only(anvil)))
    assert [(r["device_id"], r["status"]) for r in data["results"]] == [
        (hex0x(B), "pending"),
        (hex0x(A), "already-allowed"),
        (hex0x(C), "pending"),
    ]
    batch = load_batch(batch_file)
    assert len(batch["transactions"]) == 2
    # writing the batch changed nothing: no transaction from anyone, the Safe has not moved
    assert [chain.nonce(s.address) for s in (owner, stranger, third)] == sent_before
    assert safe_2_of_3.nonce() == 0
    assert listed_devices(anvil, app) == [hex0x(A)]

    # one owner's signature is not enough for this Safe: the batch cannot be executed with it
    alone = exec_batch_request(safe_2_of_3, safe_contracts, batch, [third], submitter=third)
    with pytest.raises(ContractReverted, match="GS020"):
        simulate(chain, third, [alone])

    # two owners: `stranger` signs the SafeTx hash, `third` approves it by sending it
    signed = exec_batch_request(safe_2_of_3, safe_contracts, batch, [stranger, third], submitter=third)
    send_exec(safe_2_of_3, signed, third)
    assert safe_2_of_3.nonce() == 1
    assert listed_devices(anvil, app) == [hex0x(A), hex0x(B), hex0x(C)]
    assert app.is_device_allowed(B) and app.is_device_allowed(C)  # allowedDeviceIds, read directly
    assert not app.allow_any_device()

    # the signed transaction cannot be replayed (the Safe's nonce moved on), and warden has nothing left to do
    with pytest.raises(ContractReverted, match="GS026"):
        simulate(chain, third, [signed])
    rerun_file = tmp_path / "again.json"
    rerun = warden(
        "allow-devices", "add", app.address, hex0x(B), hex0x(C), "--safe-batch", str(rerun_file), env=read_only(anvil)
    )
    assert rerun.exit_code == 0, rerun.stderr
    assert "nothing to change" in rerun.stderr and not rerun_file.exists()


def test_compose_hashes_and_allow_any_batches_are_executed_by_a_1_of_1_safe(
    anvil: Anvil,
    chain: Chain,
    owner: Signer,
    third: Signer,
    kms: KmsRegistry,
    safe_contracts: SafeContracts,
    safe_1_of_1: Safe,
    tmp_path: Path,
) -> None:
    app = deploy_app(chain, owner, kms, owner=safe_1_of_1.address, compose_hash=HASH_1)
    hashes_file, any_file = tmp_path / "hashes.json", tmp_path / "allow-any.json"
    hashes = ok(
        warden(
            "compose-hashes", "add", app.address, hex0x(HASH_1), hex0x(HASH_2), "--safe-batch", str(hashes_file),
            "--json", env=read_only(anvil),
        )
    )  # fmt: skip
    assert [(r["compose_hash"], r["status"]) for r in hashes["results"]] == [
        (hex0x(HASH_1), "already-allowed"),
        (hex0x(HASH_2), "pending"),
    ]
    allow_any = ok(
        warden("allow-devices", "allow-any", app.address, "--enable", "--safe-batch", str(any_file), "--json",
               env=read_only(anvil))
    )  # fmt: skip
    assert allow_any["tx"] is None and allow_any["safe_batch"] == str(any_file)
    assert listed_hashes(anvil, app) == [hex0x(HASH_1)] and not app.allow_any_device()

    # the only owner signs each SafeTx hash; someone else (the deployer) pays for sending them
    exec_batch(safe_1_of_1, safe_contracts, load_batch(hashes_file), [third], submitter=owner)
    assert listed_hashes(anvil, app) == [hex0x(HASH_1), hex0x(HASH_2)]
    assert app.is_compose_hash_allowed(HASH_2)
    assert not app.allow_any_device()
    exec_batch(safe_1_of_1, safe_contracts, load_batch(any_file), [third], submitter=owner)
    assert app.allow_any_device()
    assert ok(warden("allow-devices", "list", app.address, "--json", env=read_only(anvil)))["allow_any_device"]
    assert safe_1_of_1.nonce() == 2


def test_a_plain_add_by_a_safe_owner_key_is_refused_naming_the_safe(
    anvil: Anvil,
    chain: Chain,
    owner: Signer,
    kms: KmsRegistry,
    safe_2_of_3: Safe,
) -> None:
    app = deploy_app(chain, owner, kms, owner=safe_2_of_3.address, device_id=A)
    nonce = chain.nonce(owner.address)
    env = {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": DEV_PRIVATE_KEY}  # one of the Safe's owners, not the app's
    for args in (("add", app.address, hex0x(B), hex0x(C), "--wait"), ("allow-any", app.address, "--enable")):
        run = warden("allow-devices", *args, env=env)
        assert_clean_error(
            run, 2, f"owned by the contract {safe_2_of_3.address}", "Safe", "--safe-batch", "nothing was sent"
        )
    assert chain.nonce(owner.address) == nonce
    assert listed_devices(anvil, app) == [hex0x(A)]
    assert not app.is_device_allowed(B) and not app.allow_any_device()
