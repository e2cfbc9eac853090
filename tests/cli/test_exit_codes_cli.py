"""Exit codes a script can rely on: `--wait` that times out is a failure (1) with the pending tx hashes,
and a keystore that is not one is bad input (2) before any password prompt or transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.chain import deploy_app
from tests.support.cli import Run, assert_clean_error, warden
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, eth_account_class
from warden.cli.main import app as cli_app
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil
from warden.devnet.state import DevnetState, save_state

DEVICE = "0x" + "d1" * 32
HASH = "0x" + "c1" * 32
OS_IMAGE = "0x" + "e1" * 32


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


@contextmanager
def no_mining(chain: Chain) -> Iterator[None]:
    """Transactions wait in the pool (as on a congested chain) until the block is over."""
    chain.rpc.call("evm_setAutomine", [False])
    try:
        yield
    finally:
        chain.rpc.call("evm_setAutomine", [True])
        chain.rpc.call("evm_mine")


def env(anvil: Anvil) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": DEV_PRIVATE_KEY}


def assert_unmined(run: Run, recheck: str) -> None:
    assert run.exit_code == 1, (run.exit_code, run.stdout, run.stderr)
    assert "error: 1 transaction(s) sent but not mined within 0.5 s (tx 0x" in run.stderr, run.stderr
    assert f"rerun `{recheck}` to check" in run.stderr
    assert "Traceback" not in run.stderr


# -- --wait that times out --------------------------------------------------------------------------------


def test_allow_devices_add_wait_timeout_exits_1_with_the_pending_tx(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    args = ["allow-devices", "add", app.address, DEVICE, "--wait", "--timeout", "0.5"]
    with no_mining(chain):
        run = warden(*args, "--json", env=env(anvil))
    assert_unmined(run, f"warden allow-devices list {app.address}")
    (row,) = run.json()["results"]
    assert row["status"] == "pending" and row["tx"].startswith("0x") and row["tx"] in run.stderr
    assert app.is_device_allowed(bytes.fromhex(DEVICE[2:]))  # mined once the block came: the rerun says so

    with no_mining(chain):
        table = warden("allow-devices", "remove", app.address, DEVICE, "--wait", "--timeout", "0.5", env=env(anvil))
    assert_unmined(table, f"warden allow-devices list {app.address}")
    tx = table.stderr.split("(tx ", 1)[1].split(")", 1)[0]
    assert "pending" in table.stdout and table.stdout.count(tx) == 1  # in the tx column, not again in the status
    assert "(or rerun with --wait)" not in table.stderr  # it was waited for


def test_allow_any_wait_timeout_exits_1(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    with no_mining(chain):
        run = warden("allow-devices", "allow-any", app.address, "--enable", "--wait", "--timeout", "0.5", "--json",
                     env=env(anvil))  # fmt: skip
    assert_unmined(run, f"warden app info {app.address}")
    assert run.json()["status"] == "pending" and run.json()["tx"] in run.stderr


def test_compose_hashes_add_wait_timeout_exits_1(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    with no_mining(chain):
        run = warden("compose-hashes", "add", app.address, HASH, "--wait", "--timeout", "0.5", "--json",
                     env=env(anvil))  # fmt: skip
    assert_unmined(run, f"warden compose-hashes list {app.address}")
    assert [r["status"] for r in run.json()["results"]] == ["pending"]
    assert run.json()["results"][0]["tx"] in run.stderr


def test_kms_os_image_add_wait_timeout_exits_1(anvil: Anvil, chain: Chain, kms: KmsRegistry) -> None:
    with no_mining(chain):
        run = warden("kms", "os-image", "add", OS_IMAGE, "--kms", kms.address, "--wait", "--timeout", "0.5",
                     "--json", env=env(anvil))  # fmt: skip
    assert_unmined(run, f"warden kms os-image list --kms {kms.address}")
    assert [r["status"] for r in run.json()["results"]] == ["pending"]


def test_without_wait_a_sent_transaction_is_not_a_failure(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    with no_mining(chain):
        run = warden("compose-hashes", "add", app.address, HASH, "--json", env=env(anvil))
    assert run.exit_code == 0, run.stderr
    assert [r["status"] for r in run.json()["results"]] == ["pending"]


def test_app_transfer_owner_timeout_exits_1_with_the_tx(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    with no_mining(chain):
        run = warden("app", "transfer-owner", app.address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                     "--timeout", "0.5", env=env(anvil))  # fmt: skip
    assert_clean_error(run, 1, "was sent but not mined within 0.5 s (tx 0x",
                       f"rerun `warden app info {app.address}` to check")  # fmt: skip


# -- keystores that are not ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(None, "does not exist"), ("{not json", "is not a keystore"), ('{"hello": "world"}', "is not a keystore")],
)
def test_a_bad_keystore_is_bad_input_before_any_prompt(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, tmp_path: Path, content: str | None, phrase: str
) -> None:
    path = tmp_path / "keystore.json"
    if content is not None:
        path.write_text(content)
    nonce = chain.nonce(owner.address, "latest")
    rpc = {"ETH_RPC_URL": anvil.url}
    by_flag = warden("allow-devices", "add", app.address, DEVICE, "--keystore", str(path), env=rpc)
    assert_clean_error(by_flag, 2, str(path), phrase)
    by_env = warden("compose-hashes", "add", app.address, HASH, env=rpc | {"WARDEN_KEYSTORE": str(path)})
    assert_clean_error(by_env, 2, str(path), phrase)
    for run in (by_flag, by_env):
        assert "password" not in run.stderr.lower() and "Aborted" not in run.stderr
    assert chain.nonce(owner.address, "latest") == nonce
    assert not app.is_device_allowed(bytes.fromhex(DEVICE[2:]))


def test_a_keystore_that_is_a_directory_is_bad_input(anvil: Anvil, app: AppAuth, tmp_path: Path) -> None:
    run = warden("allow-devices", "add", app.address, DEVICE, "--keystore", str(tmp_path),
                 env={"ETH_RPC_URL": anvil.url})  # fmt: skip
    assert_clean_error(run, 2, str(tmp_path), "is a directory")


# -- a named signer is never swapped for another --------------------------------------------------------------


def fast_keystore(path: Path, key: str, password: str) -> Path:
    """A real version 3 keystore with a fast KDF, so the test stays quick."""
    account = eth_account_class()
    path.write_text(json.dumps(account.encrypt(bytes.fromhex(key.removeprefix("0x")), password, kdf="pbkdf2",
                                               iterations=2)))  # fmt: skip
    return path


def test_on_the_devnet_a_bad_named_signer_is_an_error_not_the_devnet_key(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, app: AppAuth, isolated_env: Path, tmp_path: Path
) -> None:
    """With a devnet running, a missing keystore or a malformed key used to fall back to the devnet's test
    key (the app owner here) and succeed: the user named a signer, so that one signs or nothing does."""
    save_state(DevnetState(rpc_url=anvil.url, chain_id=chain.chain_id, anvil_pid=0, owner=owner.address,
                           kms=kms.address, kms_implementation=kms.address, app_implementation=kms.address),
               isolated_env)  # fmt: skip
    keystore = fast_keystore(tmp_path / "owner.json", DEV_PRIVATE_KEY, "right")
    rpc = {"ETH_RPC_URL": anvil.url}
    nonce = chain.nonce(owner.address, "latest")
    for extra_env, phrase in (
        ({"WARDEN_KEYSTORE": "/nonexistent.json"}, "keystore /nonexistent.json does not exist"),
        ({"PRIVATE_KEY": "0x1234"}, "invalid private key from PRIVATE_KEY"),
        ({"WARDEN_KEYSTORE": str(keystore), "WARDEN_KEYSTORE_PASSWORD": "wrong"}, str(keystore)),
    ):
        run = warden("allow-devices", "add", app.address, DEVICE, "--wait", env=rpc | extra_env)
        assert_clean_error(run, 2, phrase)
        assert "devnet's test key" not in run.stderr
    flag = warden("allow-devices", "add", app.address, DEVICE, "--keystore", "/nonexistent.json", env=rpc)
    assert_clean_error(flag, 2, "does not exist")
    assert chain.nonce(owner.address, "latest") == nonce
    assert not app.is_device_allowed(bytes.fromhex(DEVICE[2:]))

    # no signer named at all: the devnet's key, said on stderr (unchanged)
    unnamed = warden("allow-devices", "add", app.address, DEVICE, "--wait", "--json", env=rpc)
    assert unnamed.exit_code == 0, unnamed.stderr
    assert "signing with the devnet's test key" in unnamed.stderr
    assert [r["status"] for r in unnamed.json()["results"]] == ["added"]


def test_a_keystore_password_with_no_terminal_is_read_from_stdin_or_is_bad_input(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, tmp_path: Path
) -> None:
    keystore = fast_keystore(tmp_path / "owner.json", DEV_PRIVATE_KEY, "right")
    args = ["allow-devices", "add", app.address, DEVICE, "--keystore", str(keystore), "--wait"]
    rpc = {"ETH_RPC_URL": anvil.url}
    nonce = chain.nonce(owner.address, "latest")

    nothing = warden(*args, env=rpc)  # no WARDEN_KEYSTORE_PASSWORD, nothing on stdin: not `Aborted!` (exit 1)
    assert_clean_error(nothing, 2, f"password for keystore {keystore}", "no terminal", "WARDEN_KEYSTORE_PASSWORD")
    assert "Aborted" not in nothing.stderr and "GetPassWarning" not in nothing.stderr
    assert chain.nonce(owner.address, "latest") == nonce

    piped = CliRunner().invoke(cli_app, [*args, "--json"], input="right\n", env=rpc, catch_exceptions=False)
    assert piped.exit_code == 0, piped.stderr
    assert [r["status"] for r in json.loads(piped.stdout)["results"]] == ["added"]


def test_the_devnet_key_is_said_on_stdout_and_refused_with_require_key(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, app: AppAuth, isolated_env: Path, tmp_path: Path
) -> None:
    save_state(DevnetState(rpc_url=anvil.url, chain_id=chain.chain_id, anvil_pid=0, owner=owner.address,
                           kms=kms.address, kms_implementation=kms.address, app_implementation=kms.address),
               isolated_env)  # fmt: skip
    rpc = {"ETH_RPC_URL": anvil.url}
    nonce = chain.nonce(owner.address, "latest")

    refused = warden("allow-devices", "add", app.address, DEVICE, "--require-key", env=rpc)
    assert_clean_error(refused, 2, "--require-key", "PRIVATE_KEY")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.strict]\nrpc_url = "{anvil.url}"\nrequire_key = true\n')
    by_profile = warden("allow-devices", "add", app.address, DEVICE, "--profile", "strict",
                        env={"WARDEN_CONFIG": str(config)})  # fmt: skip
    assert_clean_error(by_profile, 2, "require_key")
    # the same anvil under another URL is not the running devnet's RPC: no fallback to its key
    other_url = anvil.url.replace("127.0.0.1", "localhost")
    elsewhere = warden("allow-devices", "add", app.address, DEVICE, env={"ETH_RPC_URL": other_url})
    assert_clean_error(elsewhere, 2, "no signer")
    assert chain.nonce(owner.address, "latest") == nonce

    human = warden("allow-devices", "add", app.address, DEVICE, "--wait", env=rpc)
    assert human.exit_code == 0, human.stderr
    assert f"signing with the devnet's test key {owner.address}" in human.stdout
    assert "added" in human.stdout
