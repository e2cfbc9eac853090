"""`warden allow-devices list|add|remove|allow-any|disallow-any|toggle-allow-any|history` against anvil."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import function_signature_to_4byte_selector
from typer.testing import CliRunner

from tests.support.chain import STRANGER_KEY, THIRD_KEY, deploy_app, send
from tests.support.cli import Run, assert_clean_error, assert_json_error, ok, warden
from tests.support.flaky_proxy import FlakyProxy
from tests.support.limited_rpc import LimitedRpc
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.safe import batch_checksum
from warden.chain.signer import Signer
from warden.cli.main import app as cli_app
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

A, B, C, D = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3, 0xD4))
OUTSIDER = bytes(31) + b"\x07"  # a device no inventory knows
ADD_DEVICE = function_signature_to_4byte_selector("addDevice(bytes32)")


def env_for(anvil: Anvil, key: str = DEV_PRIVATE_KEY, **extra: str) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": key, **extra}


def statuses(data: Any) -> list[tuple[str, str]]:
    return [(r["device_id"], r["status"]) for r in data["results"]]


def listed(anvil: Anvil, app: str, *extra: str) -> list[str]:
    data = ok(warden("allow-devices", "list", app, "--json", *extra, env={"ETH_RPC_URL": anvil.url}))
    return [d["device_id"] for d in data["devices"]]


def nonce_of(chain: Chain, tx: str) -> int:
    return int(chain.rpc.call("eth_getTransactionByHash", [tx])["nonce"], 16)


def mined(chain: Chain, tx: str) -> dict[str, Any]:
    """The receipt of a transaction sent without --wait (anvil mines it a moment after accepting it)."""
    deadline = time.monotonic() + 10
    while (receipt := chain.receipt(tx)) is None:
        assert time.monotonic() < deadline, f"{tx} was never mined"
        time.sleep(0.01)
    return receipt


def pick(args: list[str], answer: str, env: dict[str, str]) -> Run:
    """Interactive commands: the shared runner passes no input, so drive the pick list here."""
    result = CliRunner().invoke(cli_app, args, input=answer, env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """A fresh DstackApp owned by `owner`, with device A set by its initializer."""
    return deploy_app(chain, owner, kms, device_id=A)


@pytest.fixture(scope="module")
def untouched_app(chain: Chain, owner: Signer) -> AppAuth:
    """One app for the tests whose commands must all be refused (each checks that nothing changed)."""
    kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
    return deploy_app(chain, owner, kms, device_id=A)


@pytest.fixture
def nodes_file(tmp_path: Path) -> Path:
    path = tmp_path / "nodes.json"
    nodes = [
        {"name": "prod1", "device_id": hex0x(A), "region": "eu"},
        {"name": "prod2", "device_id": B.hex().upper()},
        {"name": "prod3", "device_id": hex0x(C)},
        {"name": "edge", "device_id": hex0x(D), "region": "us"},
        {"name": "EDGE", "device_id": "ee" * 32, "region": "ap"},
        {"name": "prod9", "device_id": None},
    ]
    path.write_text(json.dumps(nodes))
    return path


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[FlakyProxy]:
    with FlakyProxy(anvil.url) as flaky:
        yield flaky


# -- list and history -------------------------------------------------------------------------------


def test_list_shows_initializer_and_outside_devices_with_node_names(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path
) -> None:
    send(chain, owner, app.add_device(B))  # allowed by a transaction warden did not send
    send(chain, owner, app.add_device(OUTSIDER))
    env = {"ETH_RPC_URL": anvil.url, "WARDEN_NODES_FILE": str(nodes_file)}
    data = ok(warden("allow-devices", "list", app.address, "--json", env=env))
    assert {k: data[k] for k in ("app", "chain_id", "owner", "allow_any_device")} == {
        "app": app.address,
        "chain_id": 31337,
        "owner": owner.address,
        "allow_any_device": False,
    }
    assert [(d["device_id"], d["allowed"], d["node"]) for d in data["devices"]] == [
        (hex0x(A), True, "prod1"),
        (hex0x(B), True, "prod2"),
        (hex0x(OUTSIDER), True, None),
    ]

    human = warden("allow-devices", "ls", app.address, env=env)
    assert human.exit_code == 0, human.stderr
    assert owner.address in human.stdout and "31337" in human.stdout
    assert "allowAnyDevice  no" in human.stdout and "NOT enforced" not in human.stdout
    for text in (hex0x(A), "prod1", hex0x(B), "prod2", hex0x(OUTSIDER)):
        assert text in human.stdout


def test_list_drops_removed_devices_and_knows_re_added_ones(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    for request in (app.add_device(B), app.remove_device(A), app.remove_device(B), app.add_device(A)):
        send(chain, owner, request)
    assert listed(anvil, app.address) == [hex0x(A)]
    send(chain, owner, app.remove_device(A))
    assert listed(anvil, app.address) == []
    human = warden("allow-devices", "list", app.address, env={"ETH_RPC_URL": anvil.url})
    assert human.exit_code == 0
    assert "no device is allowed" in human.stdout


def test_allow_any_on_is_said_first_and_the_list_is_still_shown(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, kms, device_id=A, allow_any_device=True)
    env = {"ETH_RPC_URL": anvil.url}
    human = warden("allow-devices", "list", app.address, env=env)
    assert human.exit_code == 0, human.stderr
    first_line = human.stdout.splitlines()[0]
    assert "allowAnyDevice is ON" in first_line and "NOT enforced" in first_line
    assert hex0x(A) in human.stdout and "not enforced" in human.stdout
    data = ok(warden("allow-devices", "list", app.address, "--json", env=env))
    assert data["allow_any_device"] is True
    assert [(d["device_id"], d["allowed"], d["enforced"]) for d in data["devices"]] == [(hex0x(A), True, False)]


def test_app_may_be_written_as_address_or_app_id_in_any_case(anvil: Anvil, app: AppAuth) -> None:
    for form in (app.address.lower(), "app_" + app.address[2:].upper(), "APP_" + app.address[2:].lower()):
        data = ok(warden("allow-devices", "list", form, "--json", env={"ETH_RPC_URL": anvil.url}))
        assert data["app"] == app.address
        assert [d["device_id"] for d in data["devices"]] == [hex0x(A)]


def test_history_has_every_event_with_block_time_tx_and_node(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path
) -> None:
    added_b = send(chain, owner, app.add_device(B))
    removed_a = send(chain, owner, app.remove_device(A))
    enabled = send(chain, owner, app.set_allow_any_device(True))
    env = {"ETH_RPC_URL": anvil.url}
    data = ok(warden("allow-devices", "history", app.address, "--json", "--nodes-file", str(nodes_file), env=env))
    assert data["app"] == app.address
    events = data["events"]
    assert [(e["event"], e["device_id"], e["node"], e["enabled"]) for e in events] == [
        ("DeviceAdded", hex0x(A), "prod1", None),  # emitted by the initializer
        ("DeviceAdded", hex0x(B), "prod2", None),
        ("DeviceRemoved", hex0x(A), "prod1", None),
        ("AllowAnyDeviceSet", None, None, True),
    ]
    assert [(e["block"], e["tx"]) for e in events[1:]] == [
        (o.block_number, o.tx_hash) for o in (added_b, removed_a, enabled)
    ]
    assert all(isinstance(e["time"], int) and e["time"] > 1_600_000_000 for e in events)
    assert events[0]["block"] < events[1]["block"]

    human = warden("allow-devices", "history", app.address, "--nodes-file", str(nodes_file), env=env)
    assert human.exit_code == 0, human.stderr
    for text in ("DeviceRemoved", "AllowAnyDeviceSet", "enabled", "prod2", str(added_b.tx_hash)):
        assert text in human.stdout


# -- add and remove ---------------------------------------------------------------------------------


def test_add_by_name_and_id_skips_allowed_ones_and_reports_pending_tx(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path
) -> None:
    nonce = chain.nonce(owner.address)
    env = env_for(anvil, WARDEN_NODES_FILE=str(nodes_file))
    data = ok(warden("allow-devices", "add", app.address, "prod2", hex0x(A), C.hex(), "--json", env=env))
    assert data["app"] == app.address
    assert [(r["device_id"], r["node"], r["status"]) for r in data["results"]] == [
        (hex0x(B), "prod2", "pending"),
        (hex0x(A), "prod1", "already-allowed"),
        (hex0x(C), "prod3", "pending"),
    ]
    sent = [r["tx"] for r in data["results"] if r["status"] == "pending"]
    assert data["results"][1]["tx"] is None
    assert [nonce_of(chain, tx) for tx in sent] == [nonce, nonce + 1]  # consecutive, the no-op not sent
    assert all(mined(chain, tx)["status"] == "0x1" for tx in sent)
    assert chain.nonce(owner.address) == nonce + 2
    assert listed(anvil, app.address) == [hex0x(A), hex0x(B), hex0x(C)]

    human = warden("allow-devices", "add", app.address, D.hex(), "--nodes-file", str(nodes_file), env=env_for(anvil))
    assert human.exit_code == 0, human.stderr
    assert "pending" in human.stdout and hex0x(D) in human.stdout and "edge" in human.stdout
    assert f"warden allow-devices list {app.address}" in human.stderr and "--wait" in human.stderr
    (tx,) = re.findall(r"0x[0-9a-f]{64}", human.stdout.replace(hex0x(D), ""))
    mined(chain, tx)
    assert listed(anvil, app.address) == [hex0x(A), hex0x(B), hex0x(C), hex0x(D)]


def test_add_and_remove_with_wait_report_what_the_chain_says(
    anvil: Anvil, chain: Chain, app: AppAuth, nodes_file: Path
) -> None:
    env = env_for(anvil, WARDEN_NODES_FILE=str(nodes_file))
    added = ok(warden("allow-devices", "add", app.address, "prod2", "prod3", "--wait", "--json", env=env))
    assert statuses(added) == [(hex0x(B), "added"), (hex0x(C), "added")]
    assert all(chain.receipt(r["tx"]) for r in added["results"])

    removed = ok(warden("allow-devices", "rm", app.address, "prod1", hex0x(D), hex0x(C), "--wait", "--json", env=env))
    assert statuses(removed) == [(hex0x(A), "removed"), (hex0x(D), "not-allowed"), (hex0x(C), "removed")]
    assert removed["results"][1]["tx"] is None
    assert listed(anvil, app.address) == [hex0x(B)]

    human = warden("allow-devices", "remove", app.address, "prod2", "--wait", env=env)
    assert human.exit_code == 0, human.stderr
    assert "removed" in human.stdout and "prod2" in human.stdout
    assert "allowAnyDevice" not in human.stderr
    assert listed(anvil, app.address) == []


def test_removing_while_allow_any_is_on_warns(anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth) -> None:
    send(chain, owner, app.set_allow_any_device(True))
    run = warden("allow-devices", "remove", app.address, hex0x(A), "--wait", "--json", env=env_for(anvil))
    assert statuses(ok(run)) == [(hex0x(A), "removed")]
    assert "warning: allowAnyDevice is on" in run.stderr and "disallow-any" in run.stderr


def test_interactive_without_a_terminal_or_with_json_is_refused(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path
) -> None:
    """The pickers themselves are driven on a pseudo-terminal in test_pickers.py."""
    nonce = chain.nonce(owner.address)
    env = env_for(anvil, WARDEN_NODES_FILE=str(nodes_file))
    for verb in ("add", "remove"):
        run = pick(["allow-devices", verb, app.address, "-i"], "1\n", env)  # stdin is a pipe
        assert_clean_error(run, 2, "-i picks from a list on a terminal, and stdin is not one")
    run = pick(["allow-devices", "add", app.address, "-i", "--json"], "1\n", env)
    assert_json_error(run, 2, "bad-input", "-i", "--json")
    assert chain.nonce(owner.address) == nonce
    assert listed(anvil, app.address) == [hex0x(A)]


def test_a_batch_failing_mid_way_reports_each_item_and_a_rerun_finishes(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, proxy: FlakyProxy
) -> None:
    nonce = chain.nonce(owner.address)
    proxy.fail_method("eth_sendRawTransaction", "reject", after=1)  # the node refuses the second transaction
    args = ["allow-devices", "add", app.address, hex0x(B), hex0x(C), hex0x(D), "--wait", "--json"]
    run = warden(*args, env={"ETH_RPC_URL": proxy.url, "PRIVATE_KEY": DEV_PRIVATE_KEY})
    assert run.exit_code == 1, run.stderr
    data = run.json()
    assert statuses(data) == [(hex0x(B), "added"), (hex0x(C), "failed"), (hex0x(D), "failed")]
    assert "rejected by injected fault" in data["results"][1]["error"]
    assert "not sent" in data["results"][2]["error"]
    assert chain.nonce(owner.address) == nonce + 1
    assert listed(anvil, app.address) == [hex0x(A), hex0x(B)]

    rerun = ok(warden(*args, env=env_for(anvil)))
    assert statuses(rerun) == [(hex0x(B), "already-allowed"), (hex0x(C), "added"), (hex0x(D), "added")]
    assert chain.nonce(owner.address) == nonce + 3
    assert listed(anvil, app.address) == [hex0x(A), hex0x(B), hex0x(C), hex0x(D)]


def test_private_key_flag_and_keystore_can_sign(
    anvil: Anvil, chain: Chain, third: Signer, kms: KmsRegistry, owner: Signer, tmp_path: Path
) -> None:
    from eth_account import Account

    app = deploy_app(chain, owner, kms, owner=third.address)
    args = ["allow-devices", "add", app.address, hex0x(B), "--private-key", THIRD_KEY, "--wait", "--json"]
    by_flag = warden(*args, env={"ETH_RPC_URL": anvil.url})
    assert statuses(ok(by_flag)) == [(hex0x(B), "added")]
    assert "warning: a private key on the command line" in by_flag.stderr

    keystore = tmp_path / "third.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes.fromhex(THIRD_KEY[2:]), "pw", kdf="pbkdf2", iterations=2)))
    env = {"ETH_RPC_URL": anvil.url, "WARDEN_KEYSTORE_PASSWORD": "pw"}
    by_keystore = warden(
        "allow-devices", "add", app.address, hex0x(C), "--keystore", str(keystore), "--wait", "--json", env=env
    )
    assert statuses(ok(by_keystore)) == [(hex0x(C), "added")]
    assert listed(anvil, app.address) == [hex0x(B), hex0x(C)]


# -- allowAnyDevice ---------------------------------------------------------------------------------


def test_allow_any_enable_disable_and_no_op(anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth) -> None:
    env = env_for(anvil)
    on = ok(warden("allow-devices", "allow-any", app.address, "--enable", "--wait", "--json", env=env))
    assert (on["app"], on["allow_any_device"]) == (app.address, True)
    assert on["tx"] and chain.receipt(on["tx"])
    assert app.allow_any_device()

    nonce = chain.nonce(owner.address)
    again = ok(warden("allow-devices", "allow-any", app.address, "--enable", "--json", env=env))
    assert (again["allow_any_device"], again["tx"]) == (True, None)
    assert chain.nonce(owner.address) == nonce

    off = ok(warden("allow-devices", "disallow-any", app.address, "--wait", "--json", env=env))
    assert (off["allow_any_device"], off["tx"] is not None) == (False, True)
    assert not app.allow_any_device()
    nothing = ok(warden("allow-devices", "allow-any", app.address, "--disable", "--json", env=env))
    assert nothing["tx"] is None
    assert chain.nonce(owner.address) == nonce + 1

    for flags in ((), ("--enable", "--disable")):
        assert_clean_error(warden("allow-devices", "allow-any", app.address, *flags, env=env), 2, "exactly one")
    assert chain.nonce(owner.address) == nonce + 1


def test_toggle_reads_the_current_value_from_the_chain(anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth) -> None:
    send(chain, owner, app.set_allow_any_device(True))  # changed outside warden
    env = env_for(anvil)
    flipped = ok(warden("allow-devices", "toggle-allow-any", app.address, "--wait", "--json", env=env))
    assert (flipped["allow_any_device"], flipped["tx"] is not None) == (False, True)
    assert not app.allow_any_device()
    back = ok(warden("allow-devices", "toggle-allow-any", app.address, "--wait", "--json", env=env))
    assert back["allow_any_device"] is True and app.allow_any_device()

    nonce = chain.nonce(owner.address)
    forced = ok(warden("allow-devices", "toggle-allow-any", app.address, "--enable", "--json", env=env))
    assert (forced["allow_any_device"], forced["tx"]) == (True, None)
    both = warden("allow-devices", "toggle-allow-any", app.address, "--enable", "--disable", env=env)
    assert_clean_error(both, 2, "at most one")
    assert chain.nonce(owner.address) == nonce


def test_allow_any_without_wait_prints_the_pending_tx(anvil: Anvil, chain: Chain, app: AppAuth) -> None:
    run = warden("allow-devices", "allow-any", app.address, "--enable", env=env_for(anvil))
    assert run.exit_code == 0, run.stderr
    sent = re.search(r"sent \(tx (0x[0-9a-f]{64})\)", run.stdout)
    assert sent is not None, run.stdout
    assert "--wait" in run.stderr
    mined(chain, sent.group(1))
    assert app.allow_any_device()


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("devices", "phrases"),
    [
        (["0x1234"], ("invalid device id", "expected 32 bytes")),
        (["0x" + "ab" * 31], ("invalid device id", "expected 32 bytes")),
        (["0x" + "ab" * 33], ("invalid device id", "expected 32 bytes")),
        (["0x" + "zz" * 32], ("invalid device id", "not hex")),
        (["ab" * 31 + "a"], ("invalid device id", "odd number of hex digits")),
        (["ab" * 31], ("invalid device id", "expected 32 bytes")),
        ([hex0x(B), hex0x(C), "0X" + B.hex().upper()], ("given twice",)),
        (["prod2", B.hex()], ("given twice", "'prod2'")),
        (["edge"], ("ambiguous", hex0x(D), "0x" + "ee" * 32)),
        (["nosuch"], ("unknown node 'nosuch'", "nodes.json")),
        (["prod9"], ("has no known device id",)),
        ([], ("no device given", "-i")),
    ],
)
def test_bad_devices_are_refused_before_anything_is_sent(
    anvil: Anvil,
    chain: Chain,
    owner: Signer,
    untouched_app: AppAuth,
    nodes_file: Path,
    devices: list[str],
    phrases: tuple[str],
) -> None:
    nonce = chain.nonce(owner.address)
    env = env_for(anvil, WARDEN_NODES_FILE=str(nodes_file))
    for command in ("add", "remove"):
        assert_clean_error(warden("allow-devices", command, untouched_app.address, *devices, env=env), 2, *phrases)
    assert chain.nonce(owner.address) == nonce
    assert listed(anvil, untouched_app.address) == [hex0x(A)]


def test_node_names_without_an_inventory_say_how_to_give_one(anvil: Anvil, app: AppAuth) -> None:
    run = warden("allow-devices", "add", app.address, "prod1", env=env_for(anvil))
    assert_clean_error(run, 2, "--nodes-file", "WARDEN_NODES_FILE")


def test_a_broken_nodes_file_is_refused(anvil: Anvil, app: AppAuth, tmp_path: Path) -> None:
    broken = tmp_path / "nodes.json"
    broken.write_text(json.dumps([{"name": "prod1", "device_id": "0x12"}]))
    run = warden("allow-devices", "list", app.address, "--nodes-file", str(broken), env=env_for(anvil))
    assert_clean_error(run, 2, str(broken), "prod1", "device_id")


def test_apps_that_are_not_dstack_apps_or_are_cvm_names(anvil: Anvil, app: AppAuth, kms: KmsRegistry) -> None:
    env = env_for(anvil)
    assert_clean_error(warden("allow-devices", "list", kms.address, env=env), 2, "is not a DstackApp")
    assert_clean_error(warden("allow-devices", "add", kms.address, hex0x(B), env=env), 2, "is not a DstackApp")
    empty = "0x" + "11" * 20
    assert_clean_error(warden("allow-devices", "history", empty, env=env), 2, "no contract at")
    for args in (("list",), ("history",), ("add", hex0x(B)), ("allow-any", "--enable")):
        command, *rest = args
        run = warden("allow-devices", command, "my-web-cvm", *rest, env=env)
        assert_clean_error(run, 2, "'my-web-cvm' is not an app address", "WARDEN_API_URL")


def test_non_owner_signer_is_refused_and_nothing_is_sent(
    anvil: Anvil, chain: Chain, owner: Signer, stranger: Signer, app: AppAuth
) -> None:
    nonce = chain.nonce(stranger.address)
    env = env_for(anvil, STRANGER_KEY)
    for args in (
        ("add", app.address, hex0x(B), "--wait"),
        ("remove", app.address, hex0x(A)),
        ("allow-any", app.address, "--enable"),
        ("toggle-allow-any", app.address),
    ):
        run = warden("allow-devices", *args, env=env)
        assert_clean_error(run, 2, f"signer {stranger.address} is not the owner {owner.address}", "nothing was sent")
    assert chain.nonce(stranger.address) == nonce
    assert listed(anvil, app.address) == [hex0x(A)]
    assert not app.allow_any_device()


def test_chain_names_are_checked(anvil: Anvil, app: AppAuth) -> None:
    run = warden("allow-devices", "list", app.address, "--chain", "nosuch", env={})
    assert_clean_error(run, 2, "unknown --chain 'nosuch'")
    run = warden("allow-devices", "list", app.address, "--chain", "base", "--rpc-url", anvil.url, env={})
    assert_clean_error(run, 2, "wrong chain", "31337", "8453")
    run = warden("allow-devices", "add", app.address, hex0x(B), "--chain", "base", env=env_for(anvil))
    assert_clean_error(run, 2, "wrong chain")


# -- owners that are contracts: Safe batch, calldata -----------------------------------------------


def test_an_app_owned_by_a_contract_is_refused_with_the_offline_options(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, kms, owner=kms.address)  # owned by a contract, as a Safe would be
    nonce = chain.nonce(owner.address)
    for args in (("add", app.address, hex0x(B)), ("allow-any", app.address, "--enable")):
        run = warden("allow-devices", *args, env=env_for(anvil))
        assert_clean_error(run, 2, f"owned by the contract {kms.address}", "--safe-batch", "--calldata")
    assert chain.nonce(owner.address) == nonce
    assert listed(anvil, app.address) == []


def test_calldata_prints_target_and_data_per_change(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, kms, owner=kms.address, device_id=A)
    run = warden(
        "allow-devices", "add", app.address, hex0x(A), hex0x(B), hex0x(C), "--calldata", env={"ETH_RPC_URL": anvil.url}
    )
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2  # A is already allowed
    for line, device in zip(lines, (B, C), strict=True):
        assert line.startswith(f"to {app.address}  data 0x{(ADD_DEVICE + device).hex()}")
    args = ["allow-devices", "allow-any", app.address, "--enable", "--calldata", "--json"]
    data = ok(warden(*args, env={"ETH_RPC_URL": anvil.url}))
    (call,) = data["calls"]
    assert call["to"] == app.address
    set_allow_any = function_signature_to_4byte_selector("setAllowAnyDevice(bool)")
    assert call["data"] == "0x" + (set_allow_any + bytes(31) + b"\x01").hex()
    assert listed(anvil, app.address) == [hex0x(A)] and not app.allow_any_device()


def test_safe_batch_file_has_one_transaction_per_needed_change(
    anvil: Anvil, chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, owner=third.address, device_id=A)
    nonces = (chain.nonce(owner.address), chain.nonce(third.address))
    batch_file = tmp_path / "batch.json"
    args = ["allow-devices", "add", app.address, hex0x(B), hex0x(A), C.hex(), "--safe-batch", str(batch_file), "--json"]
    data = ok(warden(*args, env={"ETH_RPC_URL": anvil.url}))
    assert [r["status"] for r in data["results"]] == ["pending", "already-allowed", "pending"]

    batch = json.loads(batch_file.read_text())
    assert batch["chainId"] == "31337"
    assert batch["meta"]["createdFromSafeAddress"] == third.address
    assert batch["meta"]["checksum"] == batch_checksum(batch)
    assert [(t["to"], t["value"], t["data"]) for t in batch["transactions"]] == [
        (app.address, "0", "0x" + (ADD_DEVICE + device).hex()) for device in (B, C)
    ]
    assert (chain.nonce(owner.address), chain.nonce(third.address)) == nonces  # nothing was sent
    assert listed(anvil, app.address) == [hex0x(A)]


def test_safe_batch_with_nothing_to_change_writes_no_file(
    anvil: Anvil, chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, owner=third.address, device_id=A)
    batch_file = tmp_path / "batch.json"
    args = ["allow-devices", "add", app.address, hex0x(A), "--safe-batch", str(batch_file), "--json"]
    run = warden(*args, env={"ETH_RPC_URL": anvil.url})
    assert [r["status"] for r in ok(run)["results"]] == ["already-allowed"]
    assert not batch_file.exists()
    assert "nothing to change" in run.stderr


# -- reading through difficult nodes, and the cache -------------------------------------------------


def mine(chain: Chain, blocks: int) -> None:
    chain.rpc.call("anvil_mine", [hex(blocks)])


def answered_log_scans(proxy: FlakyProxy) -> int:
    """eth_getLogs calls the node answered (each covers at most `max_log_range` blocks; a batch carries many)."""
    return sum(r.methods.count("eth_getLogs") for r in proxy.requests_for("eth_getLogs") if r.fault == "pass")


def test_list_is_complete_through_a_node_refusing_large_log_ranges(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    for device in (B, C, D):
        mine(chain, 12)
        send(chain, owner, app.add_device(device))
    send(chain, owner, app.remove_device(C))
    with FlakyProxy(anvil.url, max_log_range=5) as capped:
        env = {"ETH_RPC_URL": capped.url}
        data = ok(warden("allow-devices", "list", app.address, "--json", "--no-cache", env=env))
        history = ok(warden("allow-devices", "history", app.address, "--json", "--no-cache", env=env))
        assert "range" in capped.faults()  # the node did refuse wide ranges
    assert [d["device_id"] for d in data["devices"]] == [hex0x(A), hex0x(B), hex0x(D)]
    assert [e["event"] for e in history["events"]] == ["DeviceAdded"] * 4 + ["DeviceRemoved"]


def test_second_list_uses_the_cache_and_sees_new_events(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    send(chain, owner, app.add_device(B))
    mine(chain, 200)  # most of the history is now older than the reorg depth, so it may be cached
    with FlakyProxy(anvil.url, max_log_range=8) as capped:
        env = {"ETH_RPC_URL": capped.url}
        first = ok(warden("allow-devices", "list", app.address, "--json", env=env))
        scans_first = answered_log_scans(capped)
        second = ok(warden("allow-devices", "list", app.address, "--json", env=env))
        scans_second = answered_log_scans(capped) - scans_first
        assert second == first
        assert scans_second < scans_first / 2  # only the blocks newer than the cached ones were scanned
        send(chain, owner, app.add_device(C))
        later = ok(warden("allow-devices", "list", app.address, "--json", env=env))
    assert [d["device_id"] for d in later["devices"]] == [hex0x(A), hex0x(B), hex0x(C)]


def test_the_log_cache_lives_in_the_user_cache_dir(
    anvil: Anvil, app: AppAuth, user_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "somewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("WARDEN_HOME")  # the devnet's default home would be ./.warden: the cache must not go there
    assert listed(anvil, app.address) == [hex0x(A)]
    assert (user_cache / "logs.sqlite").is_file()
    assert list(workdir.iterdir()) == []  # nothing left in the directory the command ran in


def test_a_damaged_cache_file_is_ignored(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, user_cache: Path
) -> None:
    cache = user_cache / "logs.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"\x00garbage\xff" * 100)
    send(chain, owner, app.add_device(B))
    assert listed(anvil, app.address) == [hex0x(A), hex0x(B)]
    history = ok(warden("allow-devices", "history", app.address, "--json", env={"ETH_RPC_URL": anvil.url}))
    assert len(history["events"]) == 2


def test_every_command_has_help_with_an_example() -> None:
    for command in ("list", "add", "remove", "allow-any", "disallow-any", "toggle-allow-any", "history"):
        run = warden("allow-devices", command, "--help")
        assert run.exit_code == 0
        assert "Example:" in run.stdout, command


def test_a_warm_history_does_not_ask_for_old_block_times_again(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth
) -> None:
    for device in (B, C):
        send(chain, owner, app.add_device(device))
    chain.rpc.call("anvil_mine", [hex(100)])  # the events are now deeper than a reorg could reach
    with LimitedRpc(anvil.url) as proxy:
        env = {"ETH_RPC_URL": proxy.url}
        first = ok(warden("allow-devices", "history", app.address, "--json", env=env))
        cold = set(proxy.blocks_asked)
        proxy.reset_counts()
        second = ok(warden("allow-devices", "history", app.address, "--json", env=env))
        warm = set(proxy.blocks_asked)
    event_blocks = {e["block"] for e in first["events"]}
    assert second == first and all(e["time"] for e in first["events"]) and len(event_blocks) == 3
    assert event_blocks <= cold and not event_blocks & warm, (cold, warm)  # their times now come from the cache
