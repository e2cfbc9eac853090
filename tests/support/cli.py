"""Run `warden` in-process (fast) with an isolated environment, and check its output contract."""

from __future__ import annotations

import json
import os
import pty
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from warden.cli.main import app

# variables a developer's shell may have set that would leak into a test
WARDEN_ENV = (
    "ETH_RPC_URL",
    "PRIVATE_KEY",
    "WARDEN_KEYSTORE",
    "WARDEN_KEYSTORE_PASSWORD",
    "WARDEN_KMS",
    "KMS_CONTRACT_ADDR",
    "WARDEN_API_URL",
    "WARDEN_API_TOKEN",
    "WARDEN_NODES_FILE",
    "WARDEN_DATABASE_URL",
    "WARDEN_SECRET_KEY",
    "WARDEN_OPERATOR_KEY",
    "WARDEN_PROFILE",
    "WARDEN_CONFIG",
    "WARDEN_NODE",
    "WARDEN_PCCS_URL",
)


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited configuration, profile or devnet: a fresh WARDEN_HOME (returned) and user cache dir."""
    for name in WARDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "warden-home"
    monkeypatch.setenv("WARDEN_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return home


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    json_mode: bool = False  # --json was given: a failure also prints its error object on stdout

    def json(self) -> Any:
        """stdout must be exactly one JSON document."""
        return json.loads(self.stdout)


def warden(*args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr, "--json" in args)


WARDEN_SCRIPT = str(Path(sys.executable).parent / "warden")


def on_terminal(*args: str, env: dict[str, str] | None = None, columns: int = 80, stderr_tty: bool = False) -> Run:
    """Run the installed `warden` with stdout on a terminal `columns` wide (and stderr too with `stderr_tty`,
    then both are in `stdout`), as a user at a shell would; the environment is this test's, plus `env`."""
    master, child = pty.openpty()
    ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    extra = {"COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | extra | (env or {})
    process = subprocess.Popen([WARDEN_SCRIPT, *args], stdin=subprocess.DEVNULL, stdout=child,
                               stderr=child if stderr_tty else subprocess.PIPE, env=full_env)  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    errors = process.stderr.read().decode() if process.stderr is not None else ""
    code = process.wait(timeout=120)
    return Run(code, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n"), errors, "--json" in args)


def ok(run: Run) -> Any:
    """A successful `--json` run: its one JSON document."""
    assert run.exit_code == 0, (run.exit_code, run.stdout, run.stderr)
    return run.json()


def assert_clean_error(run: Run, exit_code: int, *phrases: str) -> None:
    """A refused command: the right exit code, `error: …` on stderr, no traceback, and on stdout nothing (or
    under --json only the error object saying the same)."""
    assert run.exit_code == exit_code, (run.exit_code, run.stdout, run.stderr)
    assert run.stderr.startswith("error: ") or "\nerror: " in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    if run.json_mode:
        error = run.json()["error"]
        assert error["exit_code"] == exit_code and f"error: {error['message']}" in run.stderr, (error, run.stderr)
    else:
        assert run.stdout == ""
    for phrase in phrases:
        assert phrase in run.stderr, (phrase, run.stderr)


def assert_json_error(run: Run, exit_code: int, kind: str, *phrases: str) -> dict[str, Any]:
    """A refused `--json` command: the exit code, `error: …` on stderr, and on stdout exactly one document
    `{"error": {"message", "kind", "exit_code"}}` saying the same; returns the error object."""
    assert run.exit_code == exit_code, (run.exit_code, run.stdout, run.stderr)
    assert run.stderr.startswith("error: ") or "\nerror: " in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    error = run.json()["error"]
    assert error["exit_code"] == exit_code and error["kind"] == kind, error
    assert f"error: {error['message']}" in run.stderr
    for phrase in phrases:
        assert phrase in error["message"], (phrase, error)
    return dict(error)
