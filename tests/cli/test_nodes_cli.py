"""`warden nodes ls|show` against a control plane served over real HTTP, and node names resolved through it."""

from __future__ import annotations

import re
import socket

import pytest
from eth_utils import to_checksum_address

from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import PlaneWorld, add_node
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

PROD5, PROD6, PROD6_NEW, ELSEWHERE = (bytes([n]) * 32 for n in (0x05, 0x06, 0x66, 0xEE))
PPID5, PPID6, PPID6_NEW = (bytes([n]) * 16 for n in (0x15, 0x16, 0x76))
BEFORE, AFTER = 1_700_000_000, 1_700_086_400  # 2023-11-14 22:13:20 and a day later (UTC)


@pytest.fixture
def fleet(world: PlaneWorld) -> PlaneWorld:
    """prod5 and prod6 (whose PPID changed after a firmware update); `elsewhere` belongs to another workspace."""
    add_node(world, "prod5", PROD5, region="eu-west", ppid=PPID5)
    world.fleet.add_node("prod6", region="us-east")
    world.fleet.grant(world.workspace, "prod6")
    world.fleet.record_identity("prod6", PPID6, PROD6, seen_at=BEFORE)
    world.fleet.record_identity("prod6", PPID6_NEW, PROD6_NEW, seen_at=AFTER)
    other, _ = world.fleet.create_workspace("other")
    world.fleet.add_node("elsewhere")
    world.fleet.grant(other, "elsewhere")
    world.fleet.record_identity("elsewhere", b"\xee" * 16, ELSEWHERE)
    return world


def plane_env(api: str, world: PlaneWorld, **extra: str) -> dict[str, str]:
    return {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token, **extra}


def test_ls_prints_the_workspaces_nodes_as_json_and_as_a_table(fleet: PlaneWorld, api: str) -> None:
    data = ok(warden("nodes", "ls", "--json", env=plane_env(api, fleet)))
    assert [{k: n[k] for k in ("name", "device_id", "ppid", "region", "status")} for n in data["nodes"]] == [
        {"name": "prod5", "device_id": hex0x(PROD5), "ppid": hex0x(PPID5), "region": "eu-west", "status": "online"},
        {
            "name": "prod6",
            "device_id": hex0x(PROD6_NEW),
            "ppid": hex0x(PPID6_NEW),
            "region": "us-east",
            "status": "online",
        },
    ]  # `elsewhere` belongs to another workspace: not listed

    table = warden("nodes", "ls", env=plane_env(api, fleet))
    assert table.exit_code == 0, table.stderr
    header = table.stdout.splitlines()[1]
    assert re.search(r"name\s.*region\s.*device_id\s.*ppid\s.*status", header), table.stdout
    prod6 = next(line for line in table.stdout.splitlines() if "prod6" in line)
    for text in ("us-east", hex0x(PROD6_NEW), hex0x(PPID6_NEW), "online"):
        assert text in prod6
    assert "elsewhere" not in table.stdout and hex0x(PROD6) not in table.stdout


def test_ls_says_so_when_the_workspace_has_no_node(world: PlaneWorld, api: str) -> None:
    run = warden("nodes", "ls", env=plane_env(api, world))
    assert run.exit_code == 0 and "no node" in run.stdout
    assert ok(warden("nodes", "ls", "--json", env=plane_env(api, world))) == {"nodes": []}


def test_show_lists_the_identity_history_after_a_ppid_change(fleet: PlaneWorld, api: str) -> None:
    data = ok(warden("nodes", "show", "prod6", "--json", env=plane_env(api, fleet)))
    assert (data["name"], data["device_id"], data["ppid"]) == ("prod6", hex0x(PROD6_NEW), hex0x(PPID6_NEW))
    assert [(h["old_device_id"], h["device_id"], h["first_seen"], h["last_seen"]) for h in data["history"]] == [
        (None, hex0x(PROD6), BEFORE, BEFORE),
        (hex0x(PROD6), hex0x(PROD6_NEW), AFTER, AFTER),
    ]

    human = warden("nodes", "show", "prod6", env=plane_env(api, fleet))
    assert human.exit_code == 0, human.stderr
    change = next(line for line in human.stdout.splitlines() if hex0x(PROD6_NEW) in line and "→" in line)
    assert change.index(hex0x(PROD6)) < change.index("→") < change.index(hex0x(PROD6_NEW))
    assert "2023-11-15 22:13:20" in change  # first seen of the new id, UTC
    assert "changed 1 time" in human.stdout and "no CVM runs on prod6 now" in human.stdout
    assert "APP" not in human.stdout


def test_show_names_each_app_a_changed_device_id_strands_with_its_fix(world: PlaneWorld, api: str) -> None:
    demo, other = (to_checksum_address(bytes([n]) * 20) for n in (0x75, 0x9A))
    add_node(world, "prod6", PROD6, ppid=PPID6)
    world.fleet.register_app(world.workspace, demo, chain_id=31337, name="shared-key-demo")
    world.fleet.register_app(world.workspace, other, chain_id=31337)
    world.fleet.add_cvm(world.workspace, "shared-key-demo-2", app=demo, node="prod6")
    world.fleet.add_cvm(world.workspace, "shared-key-demo-3", app=demo, node="prod6")
    world.fleet.record_identity("prod6", PPID6_NEW, PROD6_NEW, allows=lambda app, device: False)
    world.fleet.add_cvm(world.workspace, "batch-1", app=other, node="prod6")  # placed since: not checked yet

    human = warden("nodes", "show", "prod6", env=plane_env(api, world))
    assert human.exit_code == 0, human.stderr
    assert (
        f"refused at next boot: shared-key-demo-2, shared-key-demo-3 — prod6's device {hex0x(PROD6_NEW)} is not "
        f"allowed by shared-key-demo; fix: warden allow-devices add {demo} prod6 --wait"
    ) in human.stdout
    assert f"  {other}: warden allow-devices add {other} prod6 --wait" in human.stdout
    assert "APP" not in human.stdout


def test_show_says_when_every_app_on_the_node_allows_its_new_id(world: PlaneWorld, api: str) -> None:
    demo = to_checksum_address(bytes([0x75]) * 20)
    add_node(world, "prod6", PROD6, ppid=PPID6)
    world.fleet.register_app(world.workspace, demo, chain_id=31337, name="shared-key-demo")
    world.fleet.add_cvm(world.workspace, "shared-key-demo-2", app=demo, node="prod6")
    world.fleet.record_identity("prod6", PPID6_NEW, PROD6_NEW, allows=lambda app, device: True)
    human = warden("nodes", "show", "prod6", env=plane_env(api, world))
    assert human.exit_code == 0, human.stderr
    assert "every app with a CVM on prod6 allowed its current id when it changed" in human.stdout
    assert "refused at next boot" not in human.stdout and "allow-devices add" not in human.stdout


def test_unknown_or_foreign_node_is_bad_input(fleet: PlaneWorld, api: str) -> None:
    for name in ("prod7", "elsewhere"):  # another workspace's node reads exactly like a missing one
        assert_clean_error(warden("nodes", "show", name, env=plane_env(api, fleet)), 2, f"unknown node {name!r}")


def test_wrong_token_fails_cleanly_without_echoing_it(fleet: PlaneWorld, api: str) -> None:
    wrong = "wdn_this-is-not-the-workspace-token"
    for args in (["nodes", "ls"], ["nodes", "show", "prod6", "--json"]):
        run = warden(*args, env={"WARDEN_API_URL": api, "WARDEN_API_TOKEN": wrong})
        assert_clean_error(run, 1, "the control plane refused the API token (WARDEN_API_TOKEN)")
        assert wrong not in run.stderr


def test_missing_url_or_token_is_bad_input(fleet: PlaneWorld, api: str) -> None:
    assert_clean_error(warden("nodes", "ls"), 2, "pass --api-url or set WARDEN_API_URL")
    assert_clean_error(warden("nodes", "ls", env={"WARDEN_API_URL": api}), 2, "set WARDEN_API_TOKEN")
    run = warden("nodes", "ls", env={"WARDEN_API_URL": "ftp://plane", "WARDEN_API_TOKEN": fleet.token})
    assert_clean_error(run, 2, "invalid control plane URL", "WARDEN_API_URL")


def test_unreachable_control_plane_fails_and_names_the_variable(fleet: PlaneWorld) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = warden("nodes", "ls", env={"WARDEN_API_URL": f"http://127.0.0.1:{port}", "WARDEN_API_TOKEN": fleet.token})
    assert_clean_error(run, 1, f"cannot reach the control plane at http://127.0.0.1:{port} (WARDEN_API_URL)")
    assert fleet.token not in run.stderr


def test_flags_override_the_environment(fleet: PlaneWorld, api: str) -> None:
    env = {"WARDEN_API_URL": "http://127.0.0.1:9", "WARDEN_API_TOKEN": "wdn_stale-token-from-the-shell"}
    data = ok(warden("nodes", "ls", "--json", "--api-url", api + "/api/", "--api-token", fleet.token, env=env))
    assert [n["name"] for n in data["nodes"]] == ["prod5", "prod6"]


# -- node names resolved through the control plane ----------------------------------------------------------


def test_allow_devices_add_resolves_the_node_through_the_control_plane(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, fleet: PlaneWorld, api: str
) -> None:
    app = deploy_app(chain, owner, kms, device_id=PROD5)
    env = plane_env(api, fleet, ETH_RPC_URL=anvil.url, PRIVATE_KEY=DEV_PRIVATE_KEY)
    data = ok(warden("allow-devices", "add", app.address, "prod6", "--wait", "--json", env=env))
    # prod6's current device id, not the one it had before the firmware update
    assert [(r["device_id"], r["node"], r["status"]) for r in data["results"]] == [(hex0x(PROD6_NEW), "prod6", "added")]
    assert app.is_device_allowed(PROD6_NEW) and not app.is_device_allowed(PROD6)

    listed = ok(warden("allow-devices", "list", app.address, "--json", env=env))
    assert [(d["device_id"], d["node"]) for d in listed["devices"]] == [
        (hex0x(PROD5), "prod5"),
        (hex0x(PROD6_NEW), "prod6"),
    ]

    refused = warden("allow-devices", "add", app.address, "elsewhere", "--wait", env=env)
    assert_clean_error(refused, 2, "unknown node 'elsewhere'", "the control plane's node list")
    assert not app.is_device_allowed(ELSEWHERE)


def test_ls_limit_shows_one_page_and_all_every_page(fleet: PlaneWorld, api: str) -> None:
    for i in range(5):
        add_node(fleet, f"edge-{i}", bytes([0x30 + i]) * 32)
    env = plane_env(api, fleet)
    everyone = ["edge-0", "edge-1", "edge-2", "edge-3", "edge-4", "prod5", "prod6"]
    assert [n["name"] for n in ok(warden("nodes", "ls", "--json", env=env))["nodes"]] == everyone
    assert [n["name"] for n in ok(warden("nodes", "ls", "--all", "--json", env=env))["nodes"]] == everyone
    first = ok(warden("nodes", "ls", "--limit", "2", "--json", env=env))
    assert list(first) == ["nodes"] and [n["name"] for n in first["nodes"]] == ["edge-0", "edge-1"]
    table = warden("nodes", "ls", "--limit", "1", env=env)
    assert table.exit_code == 0 and "edge-0" in table.stdout and "edge-1" not in table.stdout


def test_ls_refuses_a_bad_limit_before_asking_the_control_plane(fleet: PlaneWorld, api: str) -> None:
    env = plane_env(api, fleet)
    assert_clean_error(warden("nodes", "ls", "--limit", "0", env=env), 2, "invalid --limit 0: expected 1 or more")
    assert_clean_error(warden("nodes", "ls", "--limit", "2", "--all", env=env), 2, "--limit and --all contradict")
    assert_clean_error(warden("nodes", "ls", "--limit", "5000", env=env), 2, "expected 1 to 1,000 items per page")
