"""`warden cvms ls|replicate` and CVM names resolved to their app, against anvil and a served control plane."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.support.chain import STRANGER_KEY, deploy_app
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import PlaneWorld, add_node
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.compose.hashing import compose_hash
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

PROD5, PROD6, PROD9 = (bytes([n]) * 32 for n in (0x05, 0x06, 0x09))
RELEASE = json.dumps({"manifest_version": 2, "name": "shared-key-demo", "runner": "docker-compose"}).encode()
NEXT_RELEASE = RELEASE.replace(b"docker-compose", b"bash")
H, H_NEXT = compose_hash(RELEASE), compose_hash(NEXT_RELEASE)
INSTANCE = bytes.fromhex("a67d32cf" * 5)  # 20 bytes, like dstack's: it looks exactly like an address
UUID = "039d741a-e887-4829-888e-e75c0655e472"


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """The demo app: prod5's device and the release's compose hash allowed; allowAnyDevice off."""
    return deploy_app(chain, owner, kms, device_id=PROD5, compose_hash=H)


@pytest.fixture
def placed(world: PlaneWorld, app: AppAuth, kms: KmsRegistry) -> PlaneWorld:
    """shared-key-demo-1 on prod5 (release H); shared-key-demo-next on prod5 (H_NEXT, not allowed yet)."""
    for name, device in (("prod5", PROD5), ("prod6", PROD6), ("prod9", PROD9)):
        add_node(world, name, device)
    world.fleet.register_app(world.workspace, app.address, chain_id=app.chain.chain_id, kms_contract=kms.address,
                             name="shared-key-demo")  # fmt: skip
    world.fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod5", compose_hash=H,
                        instance_id=INSTANCE, uuid=UUID, status="running")  # fmt: skip
    world.fleet.add_cvm(world.workspace, "shared-key-demo-next", app=app.address, node="prod5", compose_hash=H_NEXT)
    return world


def env_for(api: str, world: PlaneWorld, anvil: Anvil, key: str = DEV_PRIVATE_KEY) -> dict[str, str]:
    return {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token, "ETH_RPC_URL": anvil.url, "PRIVATE_KEY": key}


def cvm_names(world: PlaneWorld) -> list[str]:
    return [c.name for c in world.fleet.cvms(world.workspace)]


# -- ls ----------------------------------------------------------------------------------------------------


def test_ls_lists_cvms_with_node_app_and_status(placed: PlaneWorld, api: str, anvil: Anvil, app: AppAuth) -> None:
    env = env_for(api, placed, anvil)
    data = ok(warden("cvms", "ls", "--json", env=env))
    assert [(c["name"], c["node"], c["app"], c["status"], c["compose_hash"]) for c in data["cvms"]] == [
        ("shared-key-demo-1", "prod5", app.address, "running", hex0x(H)),
        ("shared-key-demo-next", "prod5", app.address, "created", hex0x(H_NEXT)),
    ]
    assert data["cvms"][0]["uuid"] == UUID and data["cvms"][0]["instance_id"] == hex0x(INSTANCE)
    assert ok(warden("cvms", "ls", "--app", "shared-key-demo", "--json", env=env)) == data

    table = warden("cvms", "ls", env=env)
    assert table.exit_code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "shared-key-demo-1 " in line)
    for text in ("prod5", app.address, "running", hex0x(H)):
        assert text in row

    assert_clean_error(warden("cvms", "ls", "--app", "no-such-app", env=env), 2, "unknown app 'no-such-app'")


def test_ls_says_which_cvms_the_chain_will_refuse_and_how_to_fix_it(
    placed: PlaneWorld, api: str, anvil: Anvil, app: AppAuth
) -> None:
    placed.fleet.add_cvm(placed.workspace, "shared-key-demo-2", app=app.address, node="prod6")
    new_id = bytes([0x66]) * 32  # prod6 after a firmware update
    placed.fleet.record_identity("prod6", new_id[:16], new_id, allows=lambda record, device: False)
    run = warden("cvms", "ls", env=env_for(api, placed, anvil))
    assert run.exit_code == 0, run.stderr
    assert run.stderr.strip() == (
        f"refused at next boot: shared-key-demo-2 — prod6's device {hex0x(new_id)} is not allowed by "
        f"shared-key-demo; fix: warden allow-devices add {app.address} prod6 --wait"
    )
    row = next(line for line in run.stdout.splitlines() if "shared-key-demo-2 " in line)
    assert " NO " in row


def test_ls_limit_shows_the_first_cvms_and_all_every_one(placed: PlaneWorld, api: str, anvil: Anvil) -> None:
    env = env_for(api, placed, anvil)
    for i in range(3):
        placed.fleet.add_cvm(placed.workspace, f"batch-{i}", app="shared-key-demo", node="prod6")
    names = ["batch-0", "batch-1", "batch-2", "shared-key-demo-1", "shared-key-demo-next"]
    assert [c["name"] for c in ok(warden("cvms", "ls", "--all", "--json", env=env))["cvms"]] == names
    first = ok(warden("cvms", "ls", "--limit", "2", "--json", env=env))
    assert list(first) == ["cvms"] and [c["name"] for c in first["cvms"]] == names[:2]
    one = ok(warden("cvms", "ls", "--app", "shared-key-demo", "--limit", "1", "--json", env=env))
    assert [c["name"] for c in one["cvms"]] == ["batch-0"]
    assert_clean_error(warden("cvms", "ls", "--limit", "-1", env=env), 2, "invalid --limit -1")
    assert_clean_error(warden("cvms", "ls", "--all", "--limit", "3", env=env), 2, "--limit and --all contradict")
    assert cvm_names(placed) == sorted(names)  # nothing was changed


# -- APP given as a CVM (allow-devices resolves it through the control plane) ------------------------------


def test_allow_devices_list_takes_a_cvm_name_uuid_or_instance_id(
    placed: PlaneWorld, api: str, anvil: Anvil, app: AppAuth
) -> None:
    env = env_for(api, placed, anvil)
    for key in ("shared-key-demo-1", UUID, INSTANCE.hex(), "shared-key-demo"):
        run = warden("allow-devices", "list", key, "--json", env=env)
        data = ok(run)
        assert data["app"] == app.address, key
        assert [(d["device_id"], d["node"]) for d in data["devices"]] == [(hex0x(PROD5), "prod5")]
        assert app.address in run.stderr  # says which app the name stood for
    for command in (["app", "info"], ["compose-hashes", "list"]):  # every APP argument resolves the same way
        assert ok(warden(*command, "shared-key-demo-1", "--json", env=env))["app"] == app.address, command
    # a bare 40-digit hex that is no CVM's instance id is still an app address
    assert ok(warden("allow-devices", "list", app.address[2:].lower(), "--json", env=env))["app"] == app.address

    run = warden("allow-devices", "list", "shared-key-demo-7", env=env)
    assert_clean_error(run, 2, "'shared-key-demo-7' is not an app address", "knows no CVM")
    without_plane = {"ETH_RPC_URL": anvil.url}
    assert_clean_error(warden("allow-devices", "list", "shared-key-demo-1", env=without_plane), 2, "WARDEN_API_URL")


# -- replicate ---------------------------------------------------------------------------------------------


def test_replicate_is_refused_with_the_fix_and_works_once_the_fix_ran(
    placed: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    env = env_for(api, placed, anvil)
    nonce = chain.nonce(owner.address, "latest")
    refused = warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", env=env)
    assert_clean_error(refused, 1, "would be refused; nothing was changed", "device: prod9", "--allow-device")
    fix = re.search(r"fix: (warden allow-devices add \S+ prod9 --wait)", refused.stderr)
    assert fix is not None, refused.stderr
    assert fix.group(1) == f"warden allow-devices add {app.address} prod9 --wait"
    assert not app.is_device_allowed(PROD9)
    assert chain.nonce(owner.address, "latest") == nonce
    assert cvm_names(placed) == ["shared-key-demo-1", "shared-key-demo-next"]

    as_json = warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--json", env=env)
    assert as_json.exit_code == 1 and "error: " in as_json.stderr
    report = as_json.json()
    assert report["replicated"] is False and report["cvm"] is None
    assert {c["check"]: c["ok"] for c in report["checks"]} == {"compose hash": True, "device": False,
                                                                "registered": True}  # fmt: skip

    ran = warden(*shlex.split(fix.group(1))[1:], env=env)  # the printed command, as the operator would run it
    assert ran.exit_code == 0, ran.stderr
    assert app.is_device_allowed(PROD9)

    done = warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", env=env)
    assert done.exit_code == 0, done.stderr
    assert "replica shared-key-demo-1-prod9 of shared-key-demo-1 registered on prod9" in done.stdout
    replica = placed.fleet.find_cvm(placed.workspace, "shared-key-demo-1-prod9")
    assert (replica.node, replica.app, replica.compose_hash) == ("prod9", app.address, H)


def test_replicate_with_allow_device_adds_the_device_then_registers(
    placed: PlaneWorld, api: str, anvil: Anvil, chain: Chain, app: AppAuth
) -> None:
    env = env_for(api, placed, anvil)
    args = ["cvms", "replicate", INSTANCE.hex(), "--node", "prod6", "--name", "shared-key-demo-2", "--allow-device"]
    data = ok(warden(*args, "--json", env=env))
    assert data["replicated"] is True
    assert data["device"]["device_id"] == hex0x(PROD6) and data["device"]["status"] == "added"
    assert {c["check"]: c["ok"] for c in data["checks"]} == {"compose hash": True, "device": True, "registered": True}
    receipt = chain.receipt(data["device"]["tx"])
    assert receipt is not None and int(receipt["status"], 16) == 1
    assert app.is_device_allowed(PROD6)
    assert {k: data["cvm"][k] for k in ("name", "node", "app", "compose_hash")} == {
        "name": "shared-key-demo-2",
        "node": "prod6",
        "app": app.address,
        "compose_hash": hex0x(H),
    }
    assert placed.fleet.find_cvm(placed.workspace, "shared-key-demo-2").node == "prod6"

    # the device is allowed now: a second replica there sends nothing
    again = ok(warden(*args[:-3], "--name", "shared-key-demo-3", "--allow-device", "--json", env=env))
    assert again["device"] is None and again["cvm"]["node"] == "prod6"


def test_replica_is_not_registered_while_its_add_device_is_unmined(
    placed: PlaneWorld, api: str, anvil: Anvil, chain: Chain, app: AppAuth
) -> None:
    env = env_for(api, placed, anvil)
    args = ["cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--allow-device", "--timeout", "1"]
    chain.rpc.call("evm_setAutomine", [False])
    try:
        stuck = warden(*args, env=env)
    finally:
        chain.rpc.call("evm_setAutomine", [True])
        chain.rpc.call("evm_mine")
    assert_clean_error(stuck, 1, "not mined within 1 s; the replica was not registered", "rerun this command")
    assert cvm_names(placed) == ["shared-key-demo-1", "shared-key-demo-next"]
    assert app.is_device_allowed(PROD9)  # mined since: the rerun sends nothing and registers the replica

    rerun = ok(warden(*args, "--json", env=env))
    assert rerun["device"] is None and rerun["cvm"]["node"] == "prod9"
    assert "shared-key-demo-1-prod9" in cvm_names(placed)


def test_replicate_with_no_kms_known_is_undecided_and_changes_nothing(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, kms: KmsRegistry
) -> None:
    """No --kms, no env, no KMS in the control plane's record: registration cannot be checked → exit 3."""
    for name, device in (("prod5", PROD5), ("prod9", PROD9)):
        add_node(world, name, device)
    world.fleet.register_app(world.workspace, app.address, chain_id=chain.chain_id, name="shared-key-demo")
    world.fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod5", compose_hash=H)
    env = env_for(api, world, anvil)
    args = ["cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--allow-device"]
    nonce = chain.nonce(owner.address, "latest")

    undecided = warden(*args, env=env)
    assert_clean_error(undecided, 3, "is undecided", "registered: no DstackKms known", "--kms ADDR",
                       "--allow-skipped", "nothing was changed")  # fmt: skip
    as_json = warden(*args, "--json", env=env)
    assert as_json.exit_code == 3 and "error: " in as_json.stderr
    checks = {c["name"]: c for c in as_json.json()["checks"]}
    assert checks["registered"]["status"] == "skipped" and "--kms" in checks["registered"]["enable"]
    assert as_json.json()["replicated"] is False
    assert chain.nonce(owner.address, "latest") == nonce  # --allow-device sent nothing either
    assert not app.is_device_allowed(PROD9)
    assert cvm_names(world) == ["shared-key-demo-1"]

    # the user accepts the gap: placed, with the skip still listed
    accepted = ok(warden(*args, "--allow-skipped", "--json", env=env))
    assert accepted["replicated"] is True
    assert {c["name"]: c["status"] for c in accepted["checks"]}["registered"] == "skipped"
    # with the KMS given, registration is checked and nothing is skipped
    checked = ok(warden(*args[:-1], "--name", "r2", "--kms", kms.address, "--json", env=env))
    assert {c["name"]: c["status"] for c in checked["checks"]} == {
        "compose hash": "ok",
        "device": "ok",
        "registered": "ok",
    }


def test_allow_device_does_not_paper_over_a_compose_hash_that_is_not_allowed(
    placed: PlaneWorld, api: str, anvil: Anvil, app: AppAuth
) -> None:
    run = warden("cvms", "replicate", "shared-key-demo-next", "--node", "prod9", "--allow-device",
                 env=env_for(api, placed, anvil))  # fmt: skip
    assert_clean_error(run, 1, f"fix: warden compose-hashes add {app.address} {hex0x(H_NEXT)} --wait")
    assert "device:" not in run.stderr  # --allow-device would fix that one; the compose hash blocks
    assert not app.is_device_allowed(PROD9)
    assert cvm_names(placed) == ["shared-key-demo-1", "shared-key-demo-next"]


def test_replicate_bad_inputs_change_nothing(
    placed: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    env = env_for(api, placed, anvil)
    placed.fleet.add_cvm(placed.workspace, "taken", app=app.address, node="prod6", compose_hash=H)
    before = cvm_names(placed)
    nonce = chain.nonce(owner.address, "latest")
    cases = [
        (["shared-key-demo-7", "--node", "prod9"], "no CVM named 'shared-key-demo-7'"),
        (["shared-key-demo-1", "--node", "prod7"], "unknown node 'prod7'"),
        (["shared-key-demo-1", "--node", "prod5"], "already runs on node prod5"),
        (["shared-key-demo-1", "--node", "prod9", "--name", "taken"], "a CVM named 'taken' exists already"),
        (["shared-key-demo-1", "--node", "prod9", "--name", "two words"], "invalid CVM name"),
    ]
    for args, phrase in cases:
        assert_clean_error(warden("cvms", "replicate", *args, "--allow-device", env=env), 2, phrase)
    stranger = warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--allow-device",
                      env=env_for(api, placed, anvil, STRANGER_KEY))  # fmt: skip
    assert_clean_error(stranger, 2, "is not the owner", "nothing was sent")
    wrong_token = warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--allow-device",
                         env=env | {"WARDEN_API_TOKEN": "wdn_not-this-workspace-token"})  # fmt: skip
    assert_clean_error(wrong_token, 1, "refused the API token (WARDEN_API_TOKEN)")
    assert_clean_error(warden("cvms", "replicate", "shared-key-demo-1", "--node", "prod9"), 2, "WARDEN_API_URL")
    assert cvm_names(placed) == before
    assert not app.is_device_allowed(PROD9)
    assert chain.nonce(owner.address, "latest") == nonce
