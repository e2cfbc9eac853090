"""Run `warden` in-process (fast) with an isolated environment, and check its output contract."""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def json(self) -> Any:
        """stdout must be exactly one JSON document."""
        return json.loads(self.stdout)


def warden(*args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def ok(run: Run) -> Any:
    """A successful `--json` run: its one JSON document."""
    assert run.exit_code == 0, (run.exit_code, run.stdout, run.stderr)
    return run.json()


def assert_clean_error(run: Run, exit_code: int, *phrases: str) -> None:
    """A refused command: the right exit code, `error: …` on stderr, nothing on stdout, no traceback."""
    assert run.exit_code == exit_code, (run.exit_code, run.stdout, run.stderr)
    assert run.stderr.startswith("error: ") or "\nerror: " in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    for phrase in phrases:
        assert phrase in run.stderr, (phrase, run.stderr)
