"""`warden devnet up|status|env|down` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import WARDEN_ENV
from warden.devnet.anvil import pid_alive

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
        "pccs_url",
    }
    assert all(set(c) >= {"name", "node", "app", "status", "guest_url", "guest_socket"} for c in first["cvms"])
    assert first["chain_id"] == 31337
    demo = first["apps"]["shared-key-demo"]
    assert json.loads((home / "devnet.json").read_text())["kms"] == first["kms"]
    assert (home / "devnet.json").stat().st_mode & 0o777 == 0o600  # it holds the API token
    assert first["nodes"] == ["prod5", "prod6", "prod9", "hosted"]
    assert {(c["name"], c["node"], c["status"]) for c in first["cvms"]} == {
        ("shared-key-demo-1", "prod5", "running"),
        ("shared-key-demo-2", "prod6", "running"),
        ("shared-key-demo-selfhost", "hosted", "running"),
    }
    # every service answers: the KMS for this chain and contract, the control plane with the devnet's token
    meta = httpx.post(first["kms_url"] + "/prpc/KMS.GetMeta", json={}).json()
    assert meta["chain_id"] == 31337 and meta["kms_contract_address"].lower() == first["kms"].lower()
    api = httpx.get(first["api_url"] + "/api/nodes", headers={"Authorization": f"Bearer {first['api_token']}"})
    assert sorted(n["name"] for n in api.json()["nodes"]) == ["hosted", "prod5", "prod6", "prod9"]
    assert httpx.get(first["api_url"] + "/api/nodes").status_code == 401
    assert httpx.get(first["dashboard_url"] + "login").status_code == 200

    status = run(home, "devnet", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["running"] is True

    # idempotent: a second `up` finds it running and changes nothing
    again = run(home, "devnet", "up", "--detach", "--port", "0", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["kms"] == first["kms"]
    assert "already running" in again.stderr

    exports = run(home, "devnet", "env").stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in exports.strip().splitlines())
    assert env["ETH_RPC_URL"] == first["rpc_url"] and env["WARDEN_KMS"] == first["kms"]
    assert env["WARDEN_API_URL"] == first["api_url"] and env["WARDEN_API_TOKEN"] == first["api_token"]
    info = run(home, "app", "info", demo, "--json", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["owner"] == first["owner"]

    # with no configuration at all, commands fall back to the running devnet and say so
    deployed = run(home, "app", "deploy", "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert "using the devnet" in deployed.stderr
    new_app = json.loads(deployed.stdout)["app"]

    sockets = [Path(c["guest_socket"]) for c in first["cvms"]]
    assert all(socket.is_socket() and socket.stat().st_mode & 0o777 == 0o600 for socket in sockets)
    assert run(home, "devnet", "down").returncode == 0
    stopped = run(home, "devnet", "status", "--json")
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False
    assert not any(socket.exists() for socket in sockets)  # the guest APIs' sockets went with the services

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


def test_foreground_devnet_stops_cleanly_on_ctrl_c_and_on_devnet_down(home: Path) -> None:
    for stop_with_down in (False, True):
        base = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV} | {"WARDEN_HOME": str(home)}
        process = subprocess.Popen(
            [WARDEN, "devnet", "up", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base
        )
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if "press Ctrl-C" in line:
                    break
            state = json.loads((home / "devnet.json").read_text())
            if stop_with_down:
                assert run(home, "devnet", "down").returncode == 0
            else:
                process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        for pid in (state["anvil_pid"], state["services_pid"]):
            assert not pid_alive(pid), "a child of the devnet outlived it"
