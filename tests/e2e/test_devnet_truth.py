"""The devnet tells the truth: `devnet env --json`, stopped CVMs and a stopped devnet reported as stopped,
replicas placed with `cvms replicate` boot, and an app from `app deploy` joins the control plane by command.

The tests share one devnet and run in order; the last one stops it and starts it again.
"""

from __future__ import annotations

import json

import httpx

from tests.e2e.devnet_runbook import DEMO_APP, DEMO_CVMS, Devnet, parse_exports
from tests.support.cli import assert_clean_error


def status_of(devnet: Devnet) -> dict[str, str]:
    return {c["name"]: c["status"] for c in devnet.ok("devnet", "status")["cvms"]}


def test_env_json_is_what_env_exports(devnet: Devnet) -> None:
    as_json = devnet.shell("devnet", "env", "--json")
    assert as_json.returncode == 0, as_json.stderr
    exported = parse_exports(devnet.shell("devnet", "env").stdout)
    assert json.loads(as_json.stdout) == exported
    assert set(exported) >= {"ETH_RPC_URL", "PRIVATE_KEY", "WARDEN_KMS", "WARDEN_API_URL", "WARDEN_API_TOKEN"}
    assert exported["WARDEN_PCCS_URL"] == devnet.status["pccs_url"]


def test_a_stopped_cvm_is_reported_stopped_until_it_boots(devnet: Devnet) -> None:
    assert devnet.ok("devnet", "cvm", "stop", "shared-key-demo-2") == {"cvm": "shared-key-demo-2", "status": "stopped"}
    assert status_of(devnet) == {"shared-key-demo-1": "running", "shared-key-demo-2": "stopped",
                                 "shared-key-demo-selfhost": "running"}  # fmt: skip
    human = devnet.run("devnet", "status")
    assert human.exit_code == 0, human.stderr
    (line,) = [line for line in human.stdout.splitlines() if "cvm shared-key-demo-2 " in line]
    assert line.split()[-1] == "stopped"
    assert devnet.cvm_rows()["shared-key-demo-2"]["status"] == "stopped"

    assert devnet.ok("devnet", "cvm", "boot", "shared-key-demo-2")["booted"] is True
    assert status_of(devnet)["shared-key-demo-2"] == "running"


def test_a_replica_boots_and_derives_the_shared_key(devnet: Devnet) -> None:
    unknown = devnet.run("devnet", "cvm", "boot", "shared-key-demo-1-prod9")
    assert_clean_error(unknown, 2, "unknown devnet CVM 'shared-key-demo-1-prod9'", "cvms replicate")

    placed = devnet.ok("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--allow-device")
    assert placed["replicated"] is True and placed["cvm"]["name"] == "shared-key-demo-1-prod9"

    booted = devnet.ok("devnet", "cvm", "boot", "shared-key-demo-1-prod9")
    source = devnet.cvm_rows()["shared-key-demo-1"]
    assert (booted["booted"], booted["node"], booted["compose_hash"]) == (True, "prod9", source["compose_hash"])
    assert booted["device_id"] == devnet.device_of("prod9")
    assert devnet.cvm_rows()["shared-key-demo-1-prod9"]["status"] == "running"
    assert status_of(devnet)["shared-key-demo-1-prod9"] == "running"
    # a replica of the same app gets the same keys: byte-identical signatures
    signed = devnet.ok("devnet", "cvm", "sign", "shared-key-demo-1-prod9", "hello")
    assert signed == devnet.ok("devnet", "cvm", "sign", "shared-key-demo-1", "hello")

    devnet.ok("devnet", "cvm", "stop", "shared-key-demo-1-prod9")
    assert status_of(devnet)["shared-key-demo-1-prod9"] == "stopped"


def test_an_app_from_app_deploy_joins_the_control_plane(devnet: Devnet) -> None:
    new_app = devnet.ok("app", "deploy")["app"]
    registered = devnet.ok("app", "register", new_app, "--name", "billing")
    assert (registered["app"], registered["name"], registered["status"]) == (new_app, "billing", "registered")
    assert (registered["chain_id"], registered["kms"]) == (devnet.status["chain_id"], devnet.status["kms"])
    recorded = devnet.api(f"/api/apps/{new_app}")
    assert recorded == {"app": new_app, "name": "billing", "chain_id": registered["chain_id"], "kms": registered["kms"]}
    again = devnet.run("app", "register", new_app)
    assert again.exit_code == 0, again.stderr
    assert "already registered" in again.stdout
    names = [a["name"] for a in devnet.api("/api/apps")["apps"]]
    assert names == [DEMO_APP, "billing"]
    bad = devnet.run("app", "register", "0xnothex")
    assert_clean_error(bad, 2, "invalid app address")

    # a CVM of that app placed through the API (as with curl) is not the devnet's to boot, and it says why
    body = {"name": "billing-1", "app": new_app, "node": "prod9"}
    token = {"Authorization": f"Bearer {devnet.env['WARDEN_API_TOKEN']}"}
    placed = httpx.post(devnet.env["WARDEN_API_URL"] + "/api/cvms", json=body, headers=token, timeout=10)
    assert placed.status_code == 201, placed.text
    refused = devnet.run("devnet", "cvm", "boot", "billing-1")
    assert_clean_error(refused, 2, f"CVM billing-1 belongs to app {new_app}, which the devnet did not deploy")


def test_a_stopped_devnet_reports_every_cvm_stopped_and_a_restart_boots_the_replica(devnet: Devnet) -> None:
    assert devnet.down().returncode == 0
    as_json = devnet.shell("devnet", "status", "--json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["running"] is False
    assert {c["name"]: c["status"] for c in data["cvms"]} == dict.fromkeys(
        [*DEMO_CVMS, "shared-key-demo-1-prod9"], "stopped"
    )
    human = devnet.shell("devnet", "status")
    assert human.returncode == 1
    assert human.stdout.startswith("devnet stopped:")
    cvm_lines = [line for line in human.stdout.splitlines() if line.strip().startswith("cvm ")]
    assert len(cvm_lines) == 4 and all(line.split()[-1] == "stopped" for line in cvm_lines)
    assert "running" not in human.stdout

    devnet.up()
    cvms = {c["name"]: c for c in devnet.ok("devnet", "status")["cvms"]}
    replica = cvms["shared-key-demo-1-prod9"]
    assert (replica["node"], replica["status"]) == ("prod9", "running")
    assert replica["guest_url"] and replica["guest_url"] != cvms["shared-key-demo-1"]["guest_url"]
