"""`warden deploy` against anvil and a served control plane: an explicit app id is used, never replaced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import PlaneWorld, add_node, plane_world
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.compose.hashing import compose_hash
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

PROD5, PROD6 = bytes([0x05]) * 32, bytes([0x06]) * 32
MANIFEST = {
    "manifest_version": 2,
    "name": "shared-key-demo",
    "runner": "docker-compose",
    "docker_compose_file": "services:\n  app:\n    image: nginx\n",
    "kms_enabled": True,
}
RAW = json.dumps(MANIFEST, indent=4).encode()
H = compose_hash(RAW)


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> Iterator[PlaneWorld]:
    with plane_world("sqlite", tmp_path, chain) as built:
        add_node(built, "prod5", PROD5)
        add_node(built, "prod6", PROD6)
        built.fleet.add_node("prod9")  # registered, but it has not posted a quote: no device id yet
        built.fleet.grant(built.workspace, "prod9")
        yield built


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "app-compose.json"
    path.write_bytes(RAW)
    return path


def env_for(api: str, world: PlaneWorld, anvil: Anvil, kms: KmsRegistry) -> dict[str, str]:
    return {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token, "ETH_RPC_URL": anvil.url,
            "PRIVATE_KEY": DEV_PRIVATE_KEY, "WARDEN_KMS": kms.address}  # fmt: skip


def factory_deployments(chain: Chain, kms: KmsRegistry) -> int:
    """How many apps the KMS factory has created (AppDeployedViaFactory events)."""
    topic = hex0x(kms.abi.event_topic("AppDeployedViaFactory"))
    return len(chain.get_logs(kms.address, 0, chain.block_number(), [[topic]]))


def cvms(world: PlaneWorld) -> list[tuple[str, str, str]]:
    return [(c.name, c.node, c.app) for c in world.fleet.cvms(world.workspace)]


def test_custom_app_id_uses_that_app_and_creates_none(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, manifest: Path
) -> None:
    existing = deploy_app(chain, owner, kms, device_id=PROD5, compose_hash=H)
    deployed_before = factory_deployments(chain, kms)
    nonce = chain.nonce(owner.address, "latest")
    custom = "app_" + existing.address[2:].lower()  # as the field report wrote it, any case
    args = ["deploy", "--compose", str(manifest), "--node", "prod5", "--name", "shared-key-demo-2"]
    data = ok(warden(*args, "--custom-app-id", custom, "--json", env=env_for(api, world, anvil, kms)))
    assert {k: data[k] for k in ("app", "cvm", "node", "compose_hash", "created_app", "tx")} == {
        "app": existing.address,
        "cvm": "shared-key-demo-2",
        "node": "prod5",
        "compose_hash": hex0x(H),
        "created_app": False,
        "tx": None,
    }
    assert factory_deployments(chain, kms) == deployed_before
    assert chain.nonce(owner.address, "latest") == nonce  # nothing was sent at all
    assert cvms(world) == [("shared-key-demo-2", "prod5", existing.address)]
    assert world.fleet.app(world.workspace, existing.address).kms_contract == kms.address


def test_explicit_app_that_would_be_refused_prints_the_fixes_and_changes_nothing(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, manifest: Path
) -> None:
    existing = deploy_app(chain, owner, kms, device_id=PROD5)  # this release's compose hash is not allowed
    deployed_before = factory_deployments(chain, kms)
    run = warden("deploy", "--compose", str(manifest), "--node", "prod6", "--app-id", existing.address,
                 env=env_for(api, world, anvil, kms))  # fmt: skip
    assert_clean_error(
        run,
        1,
        "nothing was changed",
        f"fix: warden compose-hashes add {existing.address} {hex0x(H)} --wait",
        f"fix: warden allow-devices add {existing.address} prod6 --wait",
    )
    as_json = warden("deploy", "--compose", str(manifest), "--node", "prod5", "--app-id", existing.address, "--json",
                     env=env_for(api, world, anvil, kms))  # fmt: skip
    assert as_json.exit_code == 1 and "error: " in as_json.stderr
    report = as_json.json()
    assert (report["app"], report["cvm"], report["created_app"]) == (existing.address, None, False)
    assert {c["check"]: c["ok"] for c in report["checks"]} == {"compose hash": False, "device": True,
                                                                "registered": True}  # fmt: skip
    assert factory_deployments(chain, kms) == deployed_before
    assert cvms(world) == []


def test_new_app_with_allow_any_device_sets_the_flag_at_creation(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, kms: KmsRegistry, manifest: Path
) -> None:
    deployed_before = factory_deployments(chain, kms)
    data = ok(warden("deploy", "--compose", str(manifest), "--node", "prod6", "--allow-any-device", "--json",
                     env=env_for(api, world, anvil, kms)))  # fmt: skip
    assert data["created_app"] is True and data["cvm"] == "shared-key-demo-prod6"
    assert factory_deployments(chain, kms) == deployed_before + 1
    receipt = chain.receipt(data["tx"])
    assert receipt is not None and kms.app_from_receipt(receipt) == data["app"]
    app = AppAuth.open(chain, data["app"])
    assert app.allow_any_device() and data["allow_any_device"] is True
    assert app.is_compose_hash_allowed(H) and kms.is_app_registered(app.address)
    assert cvms(world) == [("shared-key-demo-prod6", "prod6", app.address)]


def test_new_app_allows_exactly_the_nodes_device_and_the_manifest(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, manifest: Path
) -> None:
    run = warden("deploy", "--compose", str(manifest), "--node", "prod6", "--name", "demo-1",
                 env=env_for(api, world, anvil, kms))  # fmt: skip
    assert run.exit_code == 0, run.stderr
    app_address = world.fleet.cvms(world.workspace)[0].app
    assert f"new DstackApp {app_address}" in run.stdout and "CVM demo-1 on prod6" in run.stdout
    app = AppAuth.open(chain, app_address)
    assert app.owner() == owner.address and not app.allow_any_device()
    assert app.is_device_allowed(PROD6) and not app.is_device_allowed(PROD5)
    assert app.is_compose_hash_allowed(H)
    assert world.fleet.app(world.workspace, app_address).name == "shared-key-demo"


def test_deploy_bad_inputs_change_nothing(
    world: PlaneWorld, api: str, anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, manifest: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = env_for(api, world, anvil, kms)
    elsewhere = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
    foreign = deploy_app(chain, owner, elsewhere, device_id=PROD5, compose_hash=H)  # registered with another KMS
    existing = deploy_app(chain, owner, kms, device_id=PROD5, compose_hash=H)
    world.fleet.register_app(world.workspace, existing.address, chain_id=chain.chain_id)
    world.fleet.add_cvm(world.workspace, "taken", app=existing.address, node="prod5")
    deployed_before = factory_deployments(chain, kms)
    nonce = chain.nonce(owner.address, "latest")
    base = ["deploy", "--compose", str(manifest)]
    cases = [
        ([*base, "--node", "prod7"], "unknown node 'prod7'"),
        ([*base, "--node", "prod9"], "prod9 has no known device id yet"),
        ([*base, "--node", "prod5", "--name", "taken"], "a CVM named 'taken' exists already"),
        ([*base, "--node", "prod5", "--app-id", "0x" + "12" * 20], "no contract at"),
        ([*base, "--node", "prod5", "--app-id", "0x1234"], "invalid app id"),
        ([*base, "--node", "prod5", "--custom-app-id", foreign.address], "is not registered with DstackKms"),
        ([*base, "--node", "prod5", "--app-id", existing.address, "--allow-any-device"], "allow-any"),
        (["deploy", "--compose", str(tmp_path / "missing.json"), "--node", "prod5"], "cannot read --compose"),
    ]
    for args, phrase in cases:
        assert_clean_error(warden(*args, env=env), 2, phrase)
    no_plane = {k: v for k, v in env.items() if k != "WARDEN_API_URL"}
    assert_clean_error(warden(*base, "--node", "prod5", env=no_plane), 2, "WARDEN_API_URL")
    assert factory_deployments(chain, kms) == deployed_before
    assert chain.nonce(owner.address, "latest") == nonce
    assert cvms(world) == [("taken", "prod5", existing.address)]
