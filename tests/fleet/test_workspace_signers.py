"""Workspace signers sealed under the control plane's secret key: only that key opens them, only for their row."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.chain import STRANGER_KEY
from tests.support.control_plane import DATABASES, database_url
from warden.chain.signer import signer_from_key
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.errors import BadInput, OperationFailed
from warden.fleet.store import Fleet
from warden.fleet.workspace_signers import SECRET_KEY_ENV, SecretKey, assign_signer, seal_signer, unseal_signer


def test_the_secret_key_file_is_made_once_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret.key"
    first = SecretKey.load(path, env={})
    assert path.stat().st_mode & 0o777 == 0o600
    assert SecretKey.load(path, env={}) == first
    assert first.value.hex() not in repr(first)  # never in a log line
    os.chmod(path, 0o644)
    with pytest.raises(OperationFailed, match="readable by others"):
        SecretKey.load(path, env={})


def test_the_environment_wins_and_must_be_32_bytes(tmp_path: Path) -> None:
    key = SecretKey.load(tmp_path / "unused.key", env={SECRET_KEY_ENV: "ab" * 32})
    assert key.value == bytes.fromhex("ab" * 32) and key.source == SECRET_KEY_ENV
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(BadInput, match="32 bytes of hex"):
        SecretKey.load(tmp_path / "unused.key", env={SECRET_KEY_ENV: "abcd"})


def test_a_sealed_signer_opens_only_with_its_key_and_for_its_workspace(tmp_path: Path) -> None:
    secret = SecretKey.load(tmp_path / "secret.key", env={})
    signer = signer_from_key(DEV_PRIVATE_KEY, "test")
    sealed = seal_signer(secret, 7, signer)
    assert bytes.fromhex(DEV_PRIVATE_KEY[2:]) not in sealed
    assert unseal_signer(secret, 7, sealed, "workspace acme").address == signer.address
    with pytest.raises(OperationFailed, match="copied from another workspace"):
        unseal_signer(secret, 8, sealed, "workspace globex")  # the row of another workspace
    other = SecretKey.load(tmp_path / "other.key", env={})
    with pytest.raises(OperationFailed, match="does not open"):
        unseal_signer(other, 7, sealed, "workspace acme")
    with pytest.raises(OperationFailed, match="damaged"):
        unseal_signer(secret, 7, sealed[:10], "workspace acme")


@pytest.mark.parametrize("kind", DATABASES)
def test_the_inventory_keeps_the_address_and_the_sealed_key_only(kind: str, tmp_path: Path) -> None:
    secret = SecretKey.load(tmp_path / "secret.key", env={})
    with database_url(kind, tmp_path) as url:
        fleet = Fleet.open(url)
        try:
            acme, _ = fleet.create_workspace("acme")
            globex, _ = fleet.create_workspace("globex")
            stranger = signer_from_key(STRANGER_KEY, "test")
            assign_signer(fleet, secret, acme, stranger)
            stored = fleet.stored_signer(acme)
            assert stored is not None and stored[0] == stranger.address
            assert unseal_signer(secret, acme.id, stored[1], "acme").address == stranger.address
            assert fleet.stored_signer(globex) is None
            listed = {w.name: w for w in fleet.workspaces()}
            assert listed["acme"].signer == stranger.address and listed["globex"].signer is None
            assert listed["acme"].tokens == 1
            assert fleet.clear_signer(acme) == stranger.address
            assert fleet.stored_signer(acme) is None and fleet.clear_signer(acme) is None
        finally:
            fleet.close()
