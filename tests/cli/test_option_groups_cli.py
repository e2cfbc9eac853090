"""The chain, signer and delivery options are the same on every command: each command that takes an RPC
takes --chain and --profile, and the same bad combination is refused the same way everywhere."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from tests.support.cli import assert_clean_error, warden
from warden.cli.main import COMMANDS


def leaf_commands() -> Iterator[tuple[str, Any]]:
    for name, (module, attribute) in COMMANDS.items():
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            stack: list[tuple[str, Any]] = [(name, typer.main.get_group(target))]
        else:
            single = typer.Typer()
            single.command(name)(target)
            stack = [(name, typer.main.get_command(single))]
        while stack:
            path, command = stack.pop()
            if hasattr(command, "commands"):
                stack += [(f"{path} {sub}", c) for sub, c in command.commands.items()]
            else:
                yield path, command


def flags(command: Any) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


def test_every_command_with_an_rpc_takes_chain_and_profile() -> None:
    checked = []
    for path, command in leaf_commands():
        options = flags(command)
        if "--rpc-url" in options:
            checked.append(path)
            assert {"--chain", "--chain-id", "--profile"} <= options, path
        if "--private-key" in options:
            assert {"--keystore", "--require-key"} <= options, path
        if "--safe-batch" in options:
            assert {"--calldata", "--wait", "--timeout"} <= options, path
    assert len(checked) >= 20, checked  # every chain command of the CLI, not a handful


@pytest.mark.parametrize(
    "args",
    [
        ("kms", "info", "--kms", "0x" + "22" * 20),
        ("app", "info", "0x" + "11" * 20),
        ("compose-hashes", "list", "0x" + "11" * 20),
        ("plan", "policy.toml"),
        ("cvms", "ls"),
    ],
)
def test_a_chain_and_a_contradicting_chain_id_are_refused_everywhere(args: tuple[str, ...]) -> None:
    run = warden(*args, "--chain", "base", "--chain-id", "1") if args[0] != "cvms" else None
    if run is None:  # cvms ls reads only the control plane: no chain options at all
        assert "--chain" not in warden("cvms", "ls", "--help").stdout
        return
    if args[0] == "plan":  # a policy is read (and refused) before the chain is asked
        assert_clean_error(run, 2, "policy.toml")
        return
    assert_clean_error(run, 2, "--chain base is chain id 8453, but --chain-id says 1")


def test_safe_batch_and_calldata_together_are_refused_on_every_writer() -> None:
    app = "0x" + "11" * 20
    for args in (("allow-devices", "add", app, "aa" * 32), ("compose-hashes", "add", app, "aa" * 32),
                 ("kms", "os-image", "add", "aa" * 32), ("allow-devices", "disallow-any", app),
                 ("apply", "policy.toml")):  # fmt: skip
        run = warden(*args, "--safe-batch", "b.json", "--calldata", "--rpc-url", "http://127.0.0.1:9")
        assert_clean_error(run, 2, "choose one of --safe-batch and --calldata")


def test_no_kms_anywhere_is_bad_input_naming_every_source() -> None:
    for args in (("kms", "info"), ("kms", "os-image", "list"), ("kms", "os-image", "add", "aa" * 32)):
        assert_clean_error(warden(*args), 2, "no KMS address: pass --kms, set WARDEN_KMS, or add kms to a profile")


def test_listings_reads_and_writes_take_wide() -> None:
    for args in (("nodes", "ls"), ("cvms", "ls"), ("allow-devices", "list"), ("allow-devices", "history"),
                 ("allow-devices", "add"), ("compose-hashes", "add")):  # fmt: skip
        assert "--wide" in warden(*args, "--help").stdout, args


def test_no_help_shows_a_python_type() -> None:
    """Usage lines and help name values as a user writes them (`APP`, `[DEVICE]...`), never `<str>`."""
    leaks = re.compile(r"<(str|int|float|path|bool|list\[[^]]*\])>|\{[A-Z_]+\}")
    for path, _ in leaf_commands():
        run = warden(*path.split(), "--help")
        assert run.exit_code == 0, (path, run.stderr)
        assert not leaks.search(run.stdout), (path, leaks.findall(run.stdout))
