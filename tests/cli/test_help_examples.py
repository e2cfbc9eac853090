"""Every command's `--help` shows an example that can be pasted as it is (no `0x7553…14F1` placeholder), and
every command group's `--help` ends with one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from tests.support.cli import warden
from warden.cli.main import app

# groups whose modules other work owns and that have no pasteable example yet: still walked (their --help
# must work), not yet held to the rule; drop a name once its help has one
PENDING: set[str] = set()

# a hex-looking token cut in the middle: 0x7553…14F1, 0x9fE4…, 46e2…aa51
CUT_HEX = re.compile(r"(0x[0-9a-fA-F]*…|[0-9a-fA-F]{4,}…)")


def commands(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(words after `warden`, is it a group) for the command and everything under it, hidden ones left out."""
    yield path, hasattr(command, "list_commands")
    if hasattr(command, "list_commands"):
        context = typer.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from commands((*path, name), sub)


EVERY_COMMAND = list(commands((), typer.main.get_command(app)))[1:]  # without `warden` itself


def examples(text: str) -> list[str]:
    """Each paragraph of a help text that starts with `Example` (up to the next blank line)."""
    paragraphs = re.split(r"\n\s*\n", text)
    return [p.strip() for p in paragraphs if p.strip().startswith("Example")]


def test_the_walk_finds_the_groups_and_their_commands() -> None:
    found = {" ".join(path) for path, _ in EVERY_COMMAND}
    assert {"allow-devices add", "kms os-image list", "nodes show", "plan", "preflight"} <= found


@pytest.mark.parametrize(("path", "group"), EVERY_COMMAND, ids=[" ".join(p) for p, _ in EVERY_COMMAND])
def test_help_has_a_pasteable_example(path: tuple[str, ...], group: bool) -> None:
    run = warden(*path, "--help")
    assert run.exit_code == 0, run.stderr
    if path[0] in PENDING:
        return
    shown = examples(run.stdout)
    assert shown, f"warden {' '.join(path)} --help has no example:\n{run.stdout}"
    for example in shown:
        assert "warden " in example, example
        assert not CUT_HEX.search(example), f"an id cut with … cannot be pasted: {example}"
    if group:  # a group's help ends with its example, after the list of commands
        last = re.split(r"\n\s*\n", run.stdout.strip())[-1]
        assert last.strip().startswith("Example"), run.stdout


def test_a_cut_id_in_an_example_is_caught() -> None:
    assert examples("Usage: x\n\n  Example: warden allow-devices list 0x7553…14F1\n\nOptions:") == [
        "Example: warden allow-devices list 0x7553…14F1"
    ]
    assert CUT_HEX.search("warden kms info --kms 0x9fE4…") and CUT_HEX.search("remove 46e2…aa51")
    assert not CUT_HEX.search("warden allow-devices add shared-key-demo prod6 --wait")
