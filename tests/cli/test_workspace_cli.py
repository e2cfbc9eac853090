"""`warden workspace …` on a control-plane database of its own (SQLite and PostgreSQL), without a devnet."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chain import STRANGER_KEY
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import DATABASES, database_url
from warden.chain.signer import write_keystore
from warden.fleet.store import Fleet


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def test_create_list_rotate_and_set_a_signer(db: str, tmp_path: Path, isolated_env: Path) -> None:
    created = ok(warden("workspace", "create", "team-b", "--database-url", db, "--json"))
    token = created["token"]
    assert created["workspace"] == "team-b" and token.startswith("wdn_")
    listed = ok(warden("workspace", "ls", "--database-url", db, "--json"))
    assert listed == {"workspaces": [{"workspace": "team-b", "created_at": listed["workspaces"][0]["created_at"],
                                      "tokens": 1, "apps": 0, "signer": None}]}  # fmt: skip
    assert token not in json.dumps(listed)  # shown once, at creation

    rotated = ok(warden("workspace", "rotate-token", "team-b", "--database-url", db, "--json"))["token"]
    fleet = Fleet.open(db)
    try:
        assert fleet.workspace_for_token(token) is None and fleet.workspace_for_token(rotated) is not None
    finally:
        fleet.close()

    keystore = tmp_path / "team-b.json"
    address = write_keystore(keystore, STRANGER_KEY, "pw")
    set_run = warden("workspace", "set-signer", "team-b", "--keystore", str(keystore), "--database-url", db, "--json",
                     env={"WARDEN_KEYSTORE_PASSWORD": "pw"})  # fmt: skip
    assert ok(set_run) == {"workspace": "team-b", "signer": address}
    assert STRANGER_KEY[2:] not in set_run.stdout + set_run.stderr
    secret = isolated_env / "secret.key"
    assert secret.stat().st_mode & 0o777 == 0o600  # made on first use, owner only
    assert ok(warden("workspace", "ls", "--database-url", db, "--json"))["workspaces"][0]["signer"] == address
    assert ok(warden("workspace", "set-signer", "team-b", "--clear", "--database-url", db, "--json")) == {
        "workspace": "team-b",
        "signer": None,
    }
    cleared = warden("workspace", "set-signer", "team-b", "--clear", "--database-url", db)
    assert cleared.exit_code == 0 and "had no signer; nothing changed" in cleared.stdout


def test_a_wrong_keystore_password_sets_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    ok(warden("workspace", "create", "team-b", "--database-url", db, "--json"))
    keystore = tmp_path / "team-b.json"
    write_keystore(keystore, STRANGER_KEY, "right")
    run = warden("workspace", "set-signer", "team-b", "--keystore", str(keystore), "--database-url", db,
                 env={"WARDEN_KEYSTORE_PASSWORD": "wrong"})  # fmt: skip
    assert_clean_error(run, 2, "wrong password")
    rows = sqlite3.connect(tmp_path / "w.db").execute("SELECT signer_address, signer_sealed FROM workspaces").fetchall()
    assert rows == [(None, None)]


def test_serve_refuses_the_retired_shared_operator_key(tmp_path: Path) -> None:
    run = warden("serve", "--rpc-url", "http://127.0.0.1:9", "--database-url", f"sqlite:///{tmp_path / 'w.db'}",
                 env={"WARDEN_OPERATOR_KEY": STRANGER_KEY})  # fmt: skip
    assert_clean_error(run, 2, "WARDEN_OPERATOR_KEY is no longer read", "warden workspace set-signer")
    assert STRANGER_KEY[2:] not in run.stderr
    assert not (tmp_path / "w.db").exists()
