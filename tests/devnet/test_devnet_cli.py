"""`warden devnet up|status|env|down` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import WARDEN_ENV

WARDEN = str(Path(sys.executable).parent / "warden")


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV}
    base["WARDEN_HOME"] = str(home)
    return subprocess.run(
        [WARDEN, *args], capture_output=True, text=True, env=base | (env or {}), timeout=60, check=False
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "warden-home"
    yield path
    run(path, "devnet", "down")  # never leave an anvil behind, whatever the test did


def test_up_status_env_down_and_restart_keeps_contracts(home: Path) -> None:
    started = run(home, "devnet", "up", "--detach", "--port", "0", "--json")
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    assert set(first) >= {
        "rpc_url",
        "chain_id",
        "kms",
        "kms_url",
        "api_url",
        "dashboard_url",
        "api_token",
        "apps",
        "nodes",
        "cvms",
    }
    assert first["chain_id"] == 31337
    demo = first["apps"]["shared-key-demo"]
    assert json.loads((home / "devnet.json").read_text())["kms"] == first["kms"]

    status = run(home, "devnet", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["running"] is True

    # idempotent: a second `up` finds it running and changes nothing
    again = run(home, "devnet", "up", "--detach", "--port", "0", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["kms"] == first["kms"]
    assert "already running" in again.stderr

    exports = run(home, "devnet", "env").stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in exports.strip().splitlines())
    assert env["ETH_RPC_URL"] == first["rpc_url"] and env["WARDEN_KMS"] == first["kms"]
    info = run(home, "app", "info", demo, "--json", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["owner"] == first["owner"]

    # with no configuration at all, commands fall back to the running devnet and say so
    deployed = run(home, "app", "deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert "using the devnet" in deployed.stderr
    new_app = json.loads(deployed.stdout)["app"]

    assert run(home, "devnet", "down").returncode == 0
    stopped = run(home, "devnet", "status", "--json")
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False

    restarted = run(home, "devnet", "up", "--detach", "--port", "0", "--json")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["kms"] == first["kms"]
    assert "contracts restored" in restarted.stderr
    after = run(home, "app", "info", new_app, "--json")
    assert after.returncode == 0, after.stderr  # the app deployed before the restart is still there


def test_status_without_devnet_says_how_to_start_one(home: Path) -> None:
    result = run(home, "devnet", "status")
    assert result.returncode == 1
    assert "warden devnet up" in result.stderr and "Traceback" not in result.stderr
