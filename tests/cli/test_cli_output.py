"""What a user or a script sees on every command: `error: …` (and, under --json, one error document on
stdout), usage errors in one line with where to read more, the version, and help without Python types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, assert_json_error, ok, on_terminal, warden
from tests.support.control_plane import PlaneWorld, add_node
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil


def test_a_bad_input_under_json_is_one_error_document_on_stdout() -> None:
    run = warden("allow-devices", "list", "0x12", "--json")
    error = assert_json_error(run, 2, "bad-input", "invalid app address '0x12'")
    assert error["message"].startswith("invalid app address")


def test_without_json_stdout_stays_empty_on_failure() -> None:
    assert_clean_error(warden("allow-devices", "list", "0x12"), 2, "invalid app address")


def test_a_missing_argument_is_one_error_line_and_a_usage_hint() -> None:
    run = warden("allow-devices", "list")
    assert_clean_error(run, 2, "Missing argument 'APP'", "Try 'warden allow-devices list --help' for help.")
    assert "Usage:" not in run.stderr and "╭" not in run.stderr


def test_an_unknown_option_is_a_usage_error_with_json_too() -> None:
    run = warden("nodes", "ls", "--bogus", "--json")
    assert_json_error(run, 2, "usage", "No such option: --bogus")
    assert "Try 'warden nodes ls --help' for help." in run.stderr
    assert "Usage:" not in run.stderr


def test_a_bad_option_value_is_a_usage_error() -> None:
    run = warden("nodes", "ls", "--limit", "many")
    assert_clean_error(run, 2, "--limit", "Try 'warden nodes ls --help'")


def test_an_unknown_command_names_the_help_of_its_group() -> None:
    assert_clean_error(warden("allow-devices", "frobnicate"), 2, "No such command 'frobnicate'",
                       "Try 'warden allow-devices --help'")  # fmt: skip


def test_a_json_document_already_printed_is_not_followed_by_an_error_document(tmp_path: Path) -> None:
    # `--json` with bad input to a command whose output is a file: the error alone is the document
    run = warden("compose", "hash", str(tmp_path / "missing.json"), "--json")
    assert_json_error(run, 2, "bad-input", "missing.json")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag: str) -> None:
    run = warden(flag)
    assert run.exit_code == 0 and run.stdout.startswith("warden "), run
    assert run.stdout.split()[1][0].isdigit()


def test_version_command_json() -> None:
    data = ok(warden("version", "--json"))
    assert set(data) == {"version"} and data["version"][0].isdigit()
    assert warden("version").stdout == f"warden {data['version']}\n"


@pytest.mark.parametrize(
    "command",
    [
        ("allow-devices", "list"),
        ("allow-devices", "add"),
        ("compose-hashes", "add"),
        ("nodes", "show"),
        ("plan",),
        ("alerts", "add-webhook"),
    ],
)
def test_usage_lines_and_help_show_no_python_types(command: tuple[str, ...]) -> None:
    run = warden(*command, "--help")
    assert run.exit_code == 0, run.stderr
    for leak in ("<str>", "<list[str]>", "{APP}", "<path>", "<int>"):
        assert leak not in run.stdout, (leak, run.stdout)


def test_usage_line_names_arguments_plainly() -> None:
    usage = warden("allow-devices", "add", "--help").stdout.splitlines()[0]
    assert usage == "Usage: warden allow-devices add [OPTIONS] APP [DEVICE]..."


# -- tables that fit the terminal -------------------------------------------------------------------------

DEVICES = ["0x" + "d1" * 32, "0x" + "d2" * 32]
OSC8 = "\x1b]8;"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


def writer_env(anvil: Anvil) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": DEV_PRIVATE_KEY}


def test_a_narrow_terminal_shows_ids_and_hashes_by_their_ends(anvil: Anvil, app: AppAuth) -> None:
    run = on_terminal("allow-devices", "add", app.address, *DEVICES, env=writer_env(anvil), columns=80)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    assert "0xd1d1…d1d1" in run.stdout and "0xd2d2…d2d2" in run.stdout, run.stdout
    assert DEVICES[0] not in run.stdout
    assert max(len(ANSI.sub("", line)) for line in run.stdout.splitlines()) <= 80
    assert OSC8 not in run.stdout  # the devnet has no explorer


def test_wide_prints_them_in_full_on_a_terminal(anvil: Anvil, app: AppAuth) -> None:
    run = on_terminal("allow-devices", "add", app.address, *DEVICES, "--wide", env=writer_env(anvil), columns=80)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    assert DEVICES[0] in run.stdout and DEVICES[1] in run.stdout


def test_piped_output_is_always_in_full(anvil: Anvil, app: AppAuth) -> None:
    run = warden("allow-devices", "add", app.address, *DEVICES, env=writer_env(anvil) | {"COLUMNS": "60"})
    assert run.exit_code == 0, run.stderr
    assert DEVICES[0] in run.stdout and "…" not in run.stdout
    tx = next(word for word in run.stdout.split() if len(word) == 66 and word not in DEVICES)
    assert tx.startswith("0x") and OSC8 not in run.stdout


def test_tx_hashes_link_to_the_profiles_explorer_on_a_terminal(anvil: Anvil, app: AppAuth, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.ops]\nrpc_url = "{anvil.url}"\nexplorer_url = "https://explorer.example"\n')
    env = {"WARDEN_CONFIG": str(config), "PRIVATE_KEY": DEV_PRIVATE_KEY}
    run = on_terminal("allow-devices", "add", app.address, DEVICES[0], "--profile", "ops", env=env, columns=200)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    links = re.findall(r"\x1b]8;[^;]*;(https://explorer\.example/tx/0x[0-9a-f]{64})\x1b\\", run.stdout)
    assert len(links) == 1, run.stdout


# -- --wait on a terminal ----------------------------------------------------------------------------------


def test_wait_shows_a_live_line_with_block_confirmations_and_time(anvil: Anvil, app: AppAuth) -> None:
    run = on_terminal("allow-devices", "add", app.address, DEVICES[0], "--wait", env=writer_env(anvil),
                      columns=200, stderr_tty=True)  # fmt: skip
    assert run.exit_code == 0, run.stdout
    screen = ANSI.sub("", run.stdout)
    line = re.search(r"waiting for receipts: 1/1 mined · block (\d+) · 1 confirmation · \d+\.\d s", screen)
    assert line is not None, screen
    assert "added" in screen


def test_wait_still_unmined_shows_what_it_waits_for(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    chain.rpc.call("evm_setAutomine", [False])
    try:
        run = on_terminal("allow-devices", "add", app.address, DEVICES[0], "--wait", "--timeout", "0.5",
                          env=writer_env(anvil), columns=200, stderr_tty=True)  # fmt: skip
    finally:
        chain.rpc.call("evm_setAutomine", [True])
        chain.rpc.call("evm_mine")
    assert run.exit_code == 1, run.stdout
    assert re.search(r"waiting for receipts: 0/1 mined · block \d+ · \d+\.\d s", ANSI.sub("", run.stdout))


def test_wait_prints_no_live_line_when_stderr_is_not_a_terminal(anvil: Anvil, app: AppAuth) -> None:
    run = on_terminal("allow-devices", "add", app.address, DEVICES[0], "--wait", env=writer_env(anvil))
    assert run.exit_code == 0, (run.stdout, run.stderr)
    assert "waiting for receipts" not in run.stderr + run.stdout


def test_listings_fit_the_terminal_and_wide_shows_them_whole(world: PlaneWorld, api: str) -> None:
    device = bytes([0x5A]) * 32
    add_node(world, "prod5", device)
    env = {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token}
    narrow = on_terminal("nodes", "ls", env=env, columns=70)
    assert narrow.exit_code == 0, (narrow.stdout, narrow.stderr)
    assert "0x5a5a…5a5a" in narrow.stdout and "prod5" in narrow.stdout, narrow.stdout
    wide = on_terminal("nodes", "ls", "--wide", env=env, columns=70)
    assert wide.exit_code == 0 and "0x" + device.hex() in wide.stdout, wide.stdout
    roomy = on_terminal("nodes", "ls", env=env, columns=250)  # room enough: nothing is shortened
    assert "0x" + device.hex() in roomy.stdout and "…" not in roomy.stdout


def test_lists_and_the_audit_trail_fit_a_narrow_terminal_too(anvil: Anvil, app: AppAuth) -> None:
    assert warden("allow-devices", "add", app.address, *DEVICES, env=writer_env(anvil)).exit_code == 0
    for verb in ("list", "history"):
        narrow = on_terminal("allow-devices", verb, app.address, "--no-cache", env=writer_env(anvil), columns=80)
        assert narrow.exit_code == 0, (narrow.stdout, narrow.stderr)
        assert "0xd1d1…d1d1" in narrow.stdout and DEVICES[0] not in narrow.stdout, narrow.stdout
        assert max(len(ANSI.sub("", line)) for line in narrow.stdout.splitlines()) <= 80
        wide = on_terminal("allow-devices", verb, app.address, "--wide", "--no-cache", env=writer_env(anvil),
                           columns=80)  # fmt: skip
        assert DEVICES[0] in wide.stdout and DEVICES[1] in wide.stdout
