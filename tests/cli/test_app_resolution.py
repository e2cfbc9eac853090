"""APP arguments: an address where the chain holds a contract first; else, through the control plane, a CVM's
instance id (also `0x`-prefixed: it has an address's shape), name or UUID, or an app's name; each match said."""

from __future__ import annotations

import pytest

from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import PlaneWorld, add_node
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil

PROD5 = bytes([0x05]) * 32
INSTANCE = bytes.fromhex("8dc3a1f0" * 5)  # 20 bytes: exactly an address's shape
UUID = "039d741a-e887-4829-888e-e75c0655e472"


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms, device_id=PROD5)


@pytest.fixture
def placed(world: PlaneWorld, app: AppAuth, kms: KmsRegistry) -> PlaneWorld:
    add_node(world, "prod5", PROD5)
    world.fleet.register_app(world.workspace, app.address, chain_id=app.chain.chain_id, kms_contract=kms.address,
                             name="shared-key-demo")  # fmt: skip
    world.fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod5", instance_id=INSTANCE,
                        uuid=UUID, status="running")  # fmt: skip
    return world


@pytest.fixture
def env(placed: PlaneWorld, api: str, anvil: Anvil) -> dict[str, str]:
    return {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": placed.token, "ETH_RPC_URL": anvil.url}


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("0x" + INSTANCE.hex(), "instance id"),  # an address's shape, but no contract there
        ("0x" + INSTANCE.hex().upper(), "instance id"),
        (INSTANCE.hex(), "instance id"),
        ("shared-key-demo-1", "name"),
        (UUID, "UUID"),
    ],
)
def test_a_cvm_key_finds_its_app_and_says_which_key_it_was(
    env: dict[str, str], app: AppAuth, key: str, kind: str
) -> None:
    run = warden("allow-devices", "list", key, "--json", env=env)
    assert ok(run)["app"] == app.address
    assert f"CVM shared-key-demo-1 (node prod5) runs app {app.address} ({key} is its {kind})" in run.stderr


def test_an_app_name_finds_the_app(env: dict[str, str], app: AppAuth) -> None:
    run = warden("app", "info", "shared-key-demo", "--json", env=env)
    assert ok(run)["app"] == app.address
    assert f"app shared-key-demo is {app.address} (shared-key-demo is its name)" in run.stderr


def test_an_app_address_is_taken_as_it_is(env: dict[str, str], app: AppAuth) -> None:
    for key in (app.address, app.address.lower(), "app_" + app.address[2:].lower()):
        run = warden("app", "info", key, "--json", env=env)
        assert ok(run)["app"] == app.address
        assert "CVM" not in run.stderr


def test_an_address_shape_that_is_neither_is_no_contract(env: dict[str, str], anvil: Anvil) -> None:
    unknown = "0x" + "77" * 20
    run = warden("allow-devices", "list", unknown, env=env)
    assert_clean_error(run, 2, "no contract at 0x7777", "the control plane knows no CVM with that instance id")
    # without a control plane an instance id cannot be looked up: the chain's answer stands
    offline = warden("allow-devices", "list", "0x" + INSTANCE.hex(), env={"ETH_RPC_URL": anvil.url})
    assert_clean_error(offline, 2, "no contract at 0x8DC3", "if it is a CVM's instance id, set WARDEN_API_URL")


def test_a_malformed_app_is_refused_before_any_network_call(env: dict[str, str]) -> None:
    run = warden("allow-devices", "list", "0x8dc3", env={**env, "ETH_RPC_URL": "http://127.0.0.1:9"})
    assert_clean_error(run, 2, "invalid app address '0x8dc3'")
