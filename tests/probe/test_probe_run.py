"""The probe program, as the container runs it, against a devnet CVM's guest agent and the control plane."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.probe.conftest import ProbeWorld, serve_unix
from tests.support.cli import WARDEN_ENV, Run, assert_clean_error
from warden.cli.probe import app


def probe(world: ProbeWorld, node: str, *args: str, guest: str | None = None, token: str | None = None) -> Run:
    """`warden probe run` in-process, configured through the environment as in the container."""
    env = {"WARDEN_API_URL": world.url, "WARDEN_API_TOKEN": token or world.token, "WARDEN_NODE": node,
           "DSTACK_SIMULATOR_ENDPOINT": guest or world.guests[node]}  # fmt: skip
    result = CliRunner().invoke(app, ["run", *args], env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def test_the_container_entry_point_records_the_nodes_ppid_and_device_id(world: ProbeWorld) -> None:
    env = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV and not k.startswith("DSTACK_")}
    env |= {"WARDEN_API_URL": world.url, "WARDEN_API_TOKEN": world.token, "WARDEN_NODE": "prod5",
            "DSTACK_SIMULATOR_ENDPOINT": world.guests["prod5"]}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "warden.probe", "run", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    node = world.nodes["prod5"]
    assert answer["node"] == "prod5"
    assert answer["ppid"] == "0x" + node.ppid.hex()
    assert answer["device_id"] == "0x" + hashlib.sha256(node.ppid).hexdigest()
    assert answer["changed"] is True and answer["old_device_id"] is None
    assert answer["app_id"] == "0x" + "12" * 20 and answer["compose_hash"] == "0x" + "34" * 32
    state = world.node_state("prod5")
    assert state["ppid"] == answer["ppid"] and state["device_id"] == answer["device_id"]
    assert [h["device_id"] for h in state["history"]] == [answer["device_id"]]


def test_the_guest_agent_socket_works_as_mounted_in_the_container(world: ProbeWorld) -> None:
    # a short directory: a unix socket path has at most 107 bytes
    with (
        tempfile.TemporaryDirectory(prefix="probe-") as short,
        serve_unix(world.guest_apps["prod5"], Path(short) / "dstack.sock") as socket_path,
    ):
        run = probe(world, "prod5", "--guest", socket_path, "--json")
    assert run.exit_code == 0, run.stderr
    assert run.json()["device_id"] == "0x" + world.nodes["prod5"].device_id.hex()


def test_a_firmware_update_shows_as_a_new_identity_in_the_history(world: ProbeWorld) -> None:
    first = probe(world, "prod6", "--json")
    assert first.exit_code == 0, first.stderr
    old = first.json()["device_id"]
    world.nodes["prod6"].rotate_ppid()  # BIOS / microcode update: new PPID, new PCK, new device id
    again = probe(world, "prod6")
    assert again.exit_code == 0, again.stderr
    new = "0x" + world.nodes["prod6"].device_id.hex()
    assert again.stdout.strip().startswith(f"node prod6: device id changed from {old} to {new}")
    history = world.node_state("prod6")["history"]
    assert [h["device_id"] for h in history] == [old, new]
    assert history[1]["old_device_id"] == old


def test_a_quote_from_another_nodes_machine_is_refused_and_changes_nothing(world: ProbeWorld) -> None:
    assert probe(world, "prod6").exit_code == 0
    assert probe(world, "prod5").exit_code == 0
    before = world.node_state("prod5")
    # the probe in prod6's CVM, misconfigured with prod5's name
    run = probe(world, "prod5", guest=world.guests["prod6"])
    assert_clean_error(run, 1, "the quote comes from the machine recorded as node prod6", "not from node prod5")
    assert world.node_state("prod5") == before


@pytest.mark.parametrize(
    ("change", "exit_code", "phrase"),
    [
        ({"WARDEN_NODE": ""}, 2, "no node name: pass --node or set WARDEN_NODE"),
        ({"WARDEN_API_URL": ""}, 2, "no control plane: pass --api-url or set WARDEN_API_URL"),
        ({"WARDEN_API_URL": "ftp://x"}, 2, "invalid control plane URL 'ftp://x'"),
        ({"WARDEN_API_TOKEN": "wdn_wrong"}, 1, "the control plane refused the API token (WARDEN_API_TOKEN)"),
        ({"WARDEN_NODE": "nope"}, 2, "nope"),
    ],
)
def test_bad_settings_say_what_to_fix(world: ProbeWorld, change: dict[str, str], exit_code: int, phrase: str) -> None:
    env = {"WARDEN_API_URL": world.url, "WARDEN_API_TOKEN": world.token, "WARDEN_NODE": "prod5",
           "DSTACK_SIMULATOR_ENDPOINT": world.guests["prod5"]} | change  # fmt: skip
    result = CliRunner().invoke(app, ["run"], env=env, catch_exceptions=False)
    assert_clean_error(Run(result.exit_code, result.stdout, result.stderr), exit_code, phrase)
    assert world.node_state("prod5")["history"] == []


def test_no_guest_agent_says_to_mount_the_socket(world: ProbeWorld, tmp_path: Path, dead_url: str) -> None:
    missing = str(tmp_path / "dstack.sock")
    run = probe(world, "prod5", "--guest", missing)
    assert_clean_error(run, 1, f"no dstack guest agent at {missing}", "/var/run/dstack.sock:/var/run/dstack.sock")
    assert_clean_error(probe(world, "prod5", guest=dead_url), 1, f"cannot reach the guest agent at {dead_url}")
    assert world.node_state("prod5")["history"] == []


def test_a_repeating_probe_stops_at_once_on_a_bad_setting(world: ProbeWorld) -> None:
    run = probe(world, "", "--every", "3600", guest=world.guests["prod5"])
    assert_clean_error(run, 2, "no node name")
    assert_clean_error(probe(world, "prod5", "--every", "-1"), 2, "invalid --every -1")
