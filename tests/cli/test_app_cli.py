"""`warden kms deploy`, `warden app deploy|info|transfer-owner|accept-owner|register` against anvil (and, for
`register`, a control plane over real HTTP)."""

from __future__ import annotations

from eth_account import Account

from tests.support.chain import STRANGER_KEY, THIRD_KEY
from tests.support.cli import assert_clean_error, warden
from tests.support.control_plane import PlaneWorld
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

DEVICE_A = "ab" * 32
DEVICE_B = "0x" + "12" * 32
HASH_A = "0x" + "cd" * 32


def env_for(anvil: Anvil, key: str = DEV_PRIVATE_KEY) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": key}


def deploy_kms_cli(anvil: Anvil) -> str:
    run = warden("kms", "deploy", "--json", env=env_for(anvil))
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert set(data) >= {"kms", "app_implementation", "chain_id"}
    assert data["chain_id"] == 31337
    return str(data["kms"])


def deploy_app_cli(anvil: Anvil, kms: str, *extra: str) -> str:
    run = warden("app", "deploy", "--kms", kms, "--json", *extra, env=env_for(anvil))
    assert run.exit_code == 0, run.stderr
    return str(run.json()["app"])


def test_deploy_then_info_prints_design_json(anvil: Anvil, chain: Chain, owner: Signer) -> None:
    kms = deploy_kms_cli(anvil)
    run = warden("app", "deploy", "--kms", kms, "--device", DEVICE_A, "--json", env=env_for(anvil))
    assert run.exit_code == 0, run.stderr
    deployed = run.json()
    assert set(deployed) >= {"app", "kms", "owner", "tx"}
    assert deployed["kms"] == kms
    assert deployed["owner"] == owner.address
    assert deployed["tx"].startswith("0x") and len(deployed["tx"]) == 66

    info = warden("app", "info", deployed["app"], "--json", env={"ETH_RPC_URL": anvil.url})
    assert info.exit_code == 0, info.stderr
    data = info.json()
    assert {
        k: data[k] for k in ("app", "chain_id", "owner", "allow_any_device", "require_tcb_up_to_date", "version")
    } == {
        "app": deployed["app"],
        "chain_id": 31337,
        "owner": owner.address,
        "allow_any_device": False,
        "require_tcb_up_to_date": False,
        "version": 2,
    }
    assert AppAuth.open(chain, deployed["app"]).is_device_allowed(bytes.fromhex(DEVICE_A))


def test_deploy_sets_flags_and_every_device_and_hash(anvil: Anvil, chain: Chain) -> None:
    kms = deploy_kms_cli(anvil)
    address = deploy_app_cli(
        anvil,
        kms,
        "--allow-any-device",
        "--require-tcb-up-to-date",
        "--device",
        DEVICE_A,
        "--device",
        DEVICE_B,
        "--compose-hash",
        HASH_A,
    )
    app = AppAuth.open(chain, address)
    info = app.info()
    assert info.allow_any_device and info.require_tcb_up_to_date
    assert app.is_device_allowed(bytes.fromhex(DEVICE_A))
    assert app.is_device_allowed(bytes.fromhex(DEVICE_B[2:]))
    assert app.is_compose_hash_allowed(bytes.fromhex(HASH_A[2:]))


def test_info_accepts_app_prefix_and_any_case(anvil: Anvil) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    for form in ("app_" + address[2:].lower(), address.upper().replace("0X", "0x"), address[2:].lower()):
        run = warden("app", "info", form, "--json", env={"ETH_RPC_URL": anvil.url})
        assert run.exit_code == 0, run.stderr
        assert run.json()["app"] == address


def test_human_info_is_readable(anvil: Anvil) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    run = warden("app", "info", address, env={"ETH_RPC_URL": anvil.url})
    assert run.exit_code == 0
    assert address in run.stdout and "allow_any_device" in run.stdout and "no" in run.stdout


def test_two_step_ownership_handover(anvil: Anvil, stranger: Signer) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    step1 = warden("app", "transfer-owner", address, stranger.address, "--json", env=env_for(anvil))
    assert step1.exit_code == 0, step1.stderr
    assert step1.json()["pending_owner"] == stranger.address
    info = warden("app", "info", address, "--json", env={"ETH_RPC_URL": anvil.url}).json()
    assert info["pending_owner"] == stranger.address
    assert info["owner"] != stranger.address  # not until it accepts

    step2 = warden("app", "accept-owner", address, "--json", env=env_for(anvil, STRANGER_KEY))
    assert step2.exit_code == 0, step2.stderr
    assert warden("app", "info", address, "--json", env={"ETH_RPC_URL": anvil.url}).json()["owner"] == stranger.address


def test_accept_by_someone_else_is_refused(anvil: Anvil, chain: Chain, stranger: Signer, third: Signer) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    assert warden("app", "transfer-owner", address, stranger.address, env=env_for(anvil)).exit_code == 0
    nonce = chain.nonce(third.address)
    run = warden("app", "accept-owner", address, env=env_for(anvil, THIRD_KEY))
    assert_clean_error(run, 2, f"signer {third.address} is not the pending owner {stranger.address}")
    assert chain.nonce(third.address) == nonce


def test_accept_without_pending_owner_is_refused(anvil: Anvil) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    assert_clean_error(warden("app", "accept-owner", address, env=env_for(anvil)), 2, "has no pending owner")


def test_non_owner_signer_sends_nothing(anvil: Anvil, chain: Chain, owner: Signer, stranger: Signer) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    nonce = chain.nonce(stranger.address)
    run = warden("app", "transfer-owner", address, stranger.address, env=env_for(anvil, STRANGER_KEY))
    assert_clean_error(run, 2, f"signer {stranger.address} is not the owner {owner.address} of app {address}")
    assert chain.nonce(stranger.address) == nonce
    assert AppAuth.open(chain, address).pending_owner() is None


def test_private_key_flag_warns_and_never_echoes_the_key(anvil: Anvil) -> None:
    kms = deploy_kms_cli(anvil)
    run = warden("app", "deploy", "--kms", kms, "--private-key", THIRD_KEY, "--json", env={"ETH_RPC_URL": anvil.url})
    assert run.exit_code == 0, run.stderr
    assert "warning: a private key on the command line" in run.stderr
    assert THIRD_KEY[2:] not in run.stdout + run.stderr


def test_malformed_inputs_exit_2_before_any_network_call(anvil: Anvil, chain: Chain, owner: Signer) -> None:
    kms = deploy_kms_cli(anvil)
    nonce = chain.nonce(owner.address)
    env = env_for(anvil)
    assert_clean_error(warden("app", "info", "0x1234", env=env), 2, "expected 20 bytes")
    assert_clean_error(warden("app", "info", "0x" + "zz" * 20, env=env), 2, "not hex")
    bad_checksum = "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert_clean_error(warden("app", "info", bad_checksum, env=env), 2, "checksum mismatch")
    assert_clean_error(warden("app", "deploy", "--kms", kms, "--device", "0x1234", env=env), 2, "invalid device id")
    assert_clean_error(
        warden("app", "deploy", "--kms", kms, "--device", DEVICE_A, "--device", DEVICE_A, env=env),
        2,
        "given twice",
    )
    assert_clean_error(warden("app", "deploy", "--kms", "0xnothex", env=env), 2, "invalid KMS address")
    assert_clean_error(warden("app", "info", "0x" + "11" * 20, env={"ETH_RPC_URL": "ftp://x"}), 2, "invalid RPC URL")
    assert chain.nonce(owner.address) == nonce  # nothing was sent by any of them


def test_address_without_contract_and_contract_that_is_not_an_app(anvil: Anvil) -> None:
    kms = deploy_kms_cli(anvil)
    env = {"ETH_RPC_URL": anvil.url}
    empty = "0x" + "11" * 20
    assert_clean_error(warden("app", "info", empty, env=env), 2, f"no contract at {empty[:4]}")
    assert_clean_error(warden("app", "info", kms, env=env), 2, "is not a DstackApp")
    app = deploy_app_cli(anvil, kms)
    assert_clean_error(warden("app", "deploy", "--kms", app, env=env_for(anvil)), 2, "is not a DstackKms")


def test_wrong_chain_and_unreachable_rpc(anvil: Anvil) -> None:
    address = deploy_app_cli(anvil, deploy_kms_cli(anvil))
    run = warden("app", "info", address, "--chain-id", "8453", env={"ETH_RPC_URL": anvil.url})
    assert_clean_error(run, 2, "wrong chain", "31337", "8453")
    run = warden("app", "info", address, env={"ETH_RPC_URL": "http://127.0.0.1:9/secret-key-path"})
    assert_clean_error(run, 1, "RPC unavailable")
    assert "secret-key-path" not in run.stderr


def test_insufficient_funds_sends_nothing(anvil: Anvil, chain: Chain) -> None:
    kms = deploy_kms_cli(anvil)
    poor = Account.create()
    run = warden("app", "deploy", "--kms", kms, env=env_for(anvil, "0x" + bytes(poor.key).hex()))
    assert_clean_error(run, 1, "insufficient funds", poor.address)
    assert chain.nonce(poor.address) == 0


def test_no_rpc_and_no_signer_say_what_to_set(anvil: Anvil) -> None:
    assert_clean_error(warden("app", "info", "0x" + "11" * 20), 2, "--rpc-url", "ETH_RPC_URL")
    kms = deploy_kms_cli(anvil)
    run = warden("app", "deploy", "--kms", kms, env={"ETH_RPC_URL": anvil.url})
    assert_clean_error(run, 2, "no signer", "PRIVATE_KEY")


def test_every_group_has_help_with_an_example() -> None:
    for command in (
        ["kms", "deploy"],
        ["app", "deploy"],
        ["app", "info"],
        ["app", "transfer-owner"],
        ["app", "accept-owner"],
        ["app", "register"],
        ["kms", "os-image", "add"],
        ["devnet", "up"],
    ):
        run = warden(*command, "--help")
        assert run.exit_code == 0
        assert "Example:" in run.stdout, command


def plane_env(anvil: Anvil, api: str, world: PlaneWorld, kms: str) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token, "WARDEN_KMS": kms}


def test_register_records_chain_and_kms_and_a_rerun_changes_nothing(
    anvil: Anvil, api: str, world: PlaneWorld, owner: Signer
) -> None:
    kms = deploy_kms_cli(anvil)
    address = deploy_app_cli(anvil, kms)
    env = plane_env(anvil, api, world, kms)
    run = warden("app", "register", "app_" + address[2:].lower(), "--name", "billing", "--json", env=env)
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert {k: data[k] for k in ("app", "name", "chain_id", "kms", "owner", "status")} == {
        "app": address, "name": "billing", "chain_id": 31337, "kms": kms, "owner": owner.address,
        "status": "registered",
    }  # fmt: skip
    listed = warden("cvms", "ls", "--app", "billing", "--json", env=env)  # the control plane knows it by name now
    assert listed.exit_code == 0, listed.stderr
    assert world.fleet.app(world.workspace, address).as_json() == {
        "app": address, "name": "billing", "chain_id": 31337, "kms": kms,
    }  # fmt: skip

    again = warden("app", "register", address, env=env)
    assert again.exit_code == 0, again.stderr
    assert "already registered" in again.stdout and "nothing changed" in again.stdout
    assert world.fleet.app(world.workspace, address).name == "billing"

    renamed = warden("app", "register", address, "--name", "payroll", "--json", env=env)
    assert renamed.exit_code == 0, renamed.stderr
    assert renamed.json()["status"] == "updated" and renamed.json()["name"] == "payroll"
    assert [a.name for a in world.fleet.apps(world.workspace)] == ["payroll"]


def test_register_refuses_what_is_not_an_app_of_that_kms(anvil: Anvil, api: str, world: PlaneWorld) -> None:
    kms = deploy_kms_cli(anvil)
    env = plane_env(anvil, api, world, kms)
    assert_clean_error(warden("app", "register", "0x1234", env=env), 2, "invalid app address", "expected 20 bytes")
    assert_clean_error(warden("app", "register", kms, env=env), 2, "is not a DstackApp")
    other_kms = deploy_kms_cli(anvil)
    elsewhere = deploy_app_cli(anvil, other_kms)  # registered with another KMS
    run = warden("app", "register", elsewhere, env=env)
    assert_clean_error(run, 1, f"app {elsewhere} is not registered with DstackKms {kms}", "nothing was recorded")
    assert world.fleet.apps(world.workspace) == []
    no_plane = {"ETH_RPC_URL": anvil.url, "WARDEN_KMS": kms}
    assert_clean_error(warden("app", "register", elsewhere, env=no_plane), 2, "no control plane", "WARDEN_API_URL")
