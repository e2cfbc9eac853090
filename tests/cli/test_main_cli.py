"""The `warden` command itself: every group listed in a useful order, each reachable, and groups that
need neither the chain nor HTTP libraries start without importing them (the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import warden
from warden.cli.main import COMMANDS

WARDEN = str(Path(sys.executable).parent / "warden")


def test_help_lists_every_command_group_allowlists_first() -> None:
    run = warden("--help")
    assert run.exit_code == 0, run.stderr
    commands, epilog = run.stdout.split("Commands:")[1].split("\n\n", 1)
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    assert listed == [*COMMANDS, "version"]
    assert "Exit codes: 0 ok, 1 failed or refused, 2 bad input, 3 undecided" in " ".join(epilog.split())
    assert "docs/exit-codes.md" in epilog
    for name in COMMANDS:  # each one loads and answers its own --help
        sub = warden(name, "--help")
        assert sub.exit_code == 0 and f"Usage: warden {name}" in sub.stdout, (name, sub.stderr)


def test_a_group_of_one_command_stays_a_group() -> None:
    run = warden("keys", "--help")
    assert run.exit_code == 0 and "verify" in run.stdout.split("Commands:")[1]


def test_unknown_command_is_a_usage_error() -> None:
    run = warden("allow-device", "list")
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith("error: No such command 'allow-device'"), run.stderr
    assert "Try 'warden --help' for help." in run.stderr and "Usage:" not in run.stderr


def test_a_bare_group_still_shows_its_help() -> None:
    run = warden("nodes")
    assert "Usage: warden nodes [OPTIONS] COMMAND [ARGS]..." in run.stdout + run.stderr
    assert "ls" in run.stdout + run.stderr


def test_installed_script_prints_usage_errors_in_one_line() -> None:
    done = subprocess.run([WARDEN, "allow-devices", "list"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: Missing argument 'APP'.\nTry 'warden allow-devices list --help' for help.\n"
    version = subprocess.run([WARDEN, "--version"], capture_output=True, text=True, check=False, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("warden ")


def test_offline_commands_do_not_load_the_chain_or_http_libraries(tmp_path: Path) -> None:
    manifest = tmp_path / "app-compose.json"
    manifest.write_text(json.dumps({"manifest_version": 2, "name": "demo", "runner": "docker-compose"}))
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['warden', 'compose', 'hash', {str(manifest)!r}, '--json']\n"
        "try:\n"
        "    runpy.run_module('warden.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('eth_abi', 'eth_utils', 'eth_account', 'httpx', 'sqlalchemy')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60)
    assert json.loads(done.stdout)["compose_hash"].startswith("0x")
    assert "LOADED []" in done.stderr, done.stderr
