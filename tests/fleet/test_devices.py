"""An app's device allowlist as the library sees it: names resolved, the list read from events and
confirmed on chain, changes planned (warden.changes) and sent as one batch (through a node that fails
mid-batch too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chain import deploy_app, send
from tests.support.flaky_proxy import FlakyProxy
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, wait_all
from warden.changes import flow
from warden.changes.asked import device_changes
from warden.changes.flow import Delivery, Report
from warden.devnet.anvil import Anvil
from warden.errors import BadInput
from warden.fleet.devices import DeviceTarget, addable_nodes, list_devices, resolve_devices
from warden.fleet.inventory import Inventory, Node

A, B, C, D = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3, 0xD4))
E = bytes(31) + b"\x07"  # a device no inventory knows
INVENTORY = Inventory(
    [
        Node("prod1", A, region="eu"),
        Node("prod2", B),
        Node("edge", C, region="us"),
        Node("Edge", D, region="ap"),
        Node("unprovisioned", None),
    ]
)


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[FlakyProxy]:
    with FlakyProxy(anvil.url) as flaky:
        yield flaky


@pytest.fixture
def proxied_app(proxy: FlakyProxy, chain: Chain, app: AppAuth) -> Iterator[AppAuth]:
    """The same app, reached through `proxy` with quick retries (2 attempts, 10 ms apart)."""
    rpc = RpcClient(proxy.url, timeout=2.0, retries=1, backoff=0.01)
    try:
        yield AppAuth(Chain(rpc, chain.chain_id), app.address)
    finally:
        rpc.close()


def allowed(app: AppAuth) -> set[bytes]:
    return {d.device_id for d in list_devices(app, INVENTORY).devices}


def added(app: AppAuth, devices: list[bytes], signer: Signer, *, wait: bool = True, timeout: float = 60) -> Report:
    """The devices added the way `allow-devices add` does it: one plan, sent with consecutive nonces."""
    plan = device_changes(app, [(d, None) for d in devices], add=True)
    return flow.send(plan, signer, Delivery("send", wait=wait, timeout=timeout))


def statuses(report: Report) -> list[tuple[bytes, str]]:
    """Each entry of the report: its device id and what happened to it."""
    return [(bytes.fromhex(row["device_id"][2:]), row["status"]) for row in report.rows()]


# -- naming devices ---------------------------------------------------------------------------------


def test_hex_ids_with_or_without_0x_and_node_names_resolve() -> None:
    targets = resolve_devices(["0x" + A.hex().upper(), B.hex(), "0X" + C.hex()], INVENTORY)
    assert targets == [DeviceTarget(A, "prod1"), DeviceTarget(B, "prod2"), DeviceTarget(C, "edge")]
    assert resolve_devices([E.hex(), "PROD2"], INVENTORY) == [DeviceTarget(E, None), DeviceTarget(B, "prod2")]


def test_duplicates_are_refused_even_as_a_name_and_its_own_id() -> None:
    with pytest.raises(BadInput, match="given twice"):
        resolve_devices(["prod1", "0x" + A.hex()], INVENTORY)
    with pytest.raises(BadInput, match="given twice"):
        resolve_devices([B.hex(), "0x" + B.hex().upper()], INVENTORY)


def test_ambiguous_name_lists_every_candidate() -> None:
    with pytest.raises(BadInput) as caught:
        resolve_devices(["edge"], INVENTORY, "nodes file n.json")
    message = str(caught.value)
    assert "ambiguous" in message
    assert "0x" + C.hex() in message and "0x" + D.hex() in message
    assert " in us" in message and " in ap" in message


def test_unknown_names_and_names_without_inventory_are_refused() -> None:
    with pytest.raises(BadInput, match=r"unknown node 'prod9': not in nodes file n\.json"):
        resolve_devices(["prod9"], INVENTORY, "nodes file n.json")
    with pytest.raises(BadInput, match="no node inventory is configured"):
        resolve_devices(["prod1"], Inventory())
    with pytest.raises(BadInput, match="'unprovisioned' has no known device id"):
        resolve_devices(["unprovisioned"], INVENTORY)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("0x" + "ab" * 31, "expected 32 bytes"), ("0x" + "ab" * 33, "expected 32 bytes"), ("0x" + "g" * 64, "not hex")],
)
def test_malformed_ids_are_refused(text: str, phrase: str) -> None:
    with pytest.raises(BadInput, match=phrase):
        resolve_devices([text], INVENTORY)


@pytest.mark.parametrize("inventory", [INVENTORY, Inventory()], ids=["inventory", "no-inventory"])
def test_hex_of_the_wrong_length_without_0x_is_a_malformed_id_not_a_node_name(inventory: Inventory) -> None:
    for text, problem in (
        (A.hex()[:-1], "odd number of hex digits"),
        (A.hex()[:-2], "got 31"),
        (A.hex() + "00", "got 33"),
    ):
        with pytest.raises(BadInput, match=f"invalid device id .*{problem}"):
            resolve_devices([text], inventory)
    hexlike = Inventory([Node("ab" * 20, B)])  # a node may still be named with hex digits
    assert resolve_devices(["ab" * 20], hexlike) == [DeviceTarget(B, "ab" * 20)]


# -- reading the allowlist --------------------------------------------------------------------------


def test_list_includes_the_initializer_device_and_names_known_nodes(
    chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    send(chain, owner, app.add_device(E))
    listed = list_devices(app, INVENTORY)
    assert [(d.device_id, d.node) for d in listed.devices] == [(A, "prod1"), (E, None)]
    assert (listed.owner, listed.allow_any_device, listed.chain_id) == (owner.address, False, 31337)


def test_list_follows_removals_and_re_additions_confirmed_on_chain(chain: Chain, owner: Signer, app: AppAuth) -> None:
    for request in (app.add_device(A), app.add_device(B), app.remove_device(A), app.add_device(C)):
        send(chain, owner, request)
    assert allowed(app) == {B, C}
    readded = send(chain, owner, app.add_device(A))
    listed = {d.device_id: d for d in list_devices(app, INVENTORY).devices}
    assert set(listed) == {A, B, C}
    assert listed[A].block == readded.block_number and listed[A].tx == readded.tx_hash


# -- changing it ------------------------------------------------------------------------------------


def test_plan_skips_no_ops_and_send_sends_the_rest_with_consecutive_nonces(
    chain: Chain, owner: Signer, app: AppAuth
) -> None:
    send(chain, owner, app.add_device(B))
    planned = device_changes(app, [(A, "prod1"), (B, "prod2"), (C, None)], add=True)
    assert [(c.value, c.label, c.action) for c in planned.changes] == [(A, "prod1", "add"), (C, None, "add")]
    assert [(u.value, u.state) for u in planned.unchanged] == [(B, "already-allowed")]
    nonce = chain.nonce(owner.address)
    report = flow.send(planned, owner, Delivery("send", wait=True))
    assert statuses(report) == [(A, "added"), (B, "already-allowed"), (C, "added")]
    rows = report.rows()
    assert [row["node"] for row in rows] == ["prod1", "prod2", None]
    assert rows[1]["tx"] is None
    nonces = [int(chain.rpc.call("eth_getTransactionByHash", [row["tx"]])["nonce"], 16) for row in (rows[0], rows[2])]
    assert nonces == [nonce, nonce + 1]
    assert chain.nonce(owner.address) == nonce + 2  # the no-op was not sent

    removal = device_changes(app, [(A, None), (D, None)], add=False)
    report = flow.send(removal, owner, Delivery("send", wait=True))
    assert statuses(report) == [(A, "removed"), (D, "not-allowed")]
    assert allowed(app) == {B, C}


def test_without_wait_items_are_pending_with_their_tx(chain: Chain, owner: Signer, app: AppAuth) -> None:
    report = added(app, [A, B], owner, wait=False)
    assert [r.status for r in report.results] == ["pending", "pending"]
    outcomes = wait_all(chain, [TxOutcome(r.change.request(), "pending", tx_hash=r.tx) for r in report.results])
    assert [o.status for o in outcomes] == ["mined", "mined"]  # the hashes reported are the real transactions
    assert allowed(app) == {A, B}


def test_connection_dropping_mid_batch_reports_what_went_through_and_a_rerun_finishes(
    chain: Chain, owner: Signer, app: AppAuth, proxied_app: AppAuth, proxy: FlakyProxy
) -> None:
    devices = [A, B, C]
    nonce = chain.nonce(owner.address)
    proxy.fail_method("eth_sendRawTransaction", "drop", after=1)  # the first goes out, then the line is dead
    report = added(proxied_app, devices, owner, timeout=5)
    assert statuses(report) == [(A, "added"), (B, "failed"), (C, "failed")]
    first, second, third = report.results
    assert first.tx and chain.receipt(first.tx)
    assert second.error and third.error and "not sent" in third.error
    assert allowed(app) == {A}  # the report matches the chain
    assert chain.nonce(owner.address) == nonce + 1

    rerun = added(app, devices, owner)
    assert [status for _, status in statuses(rerun)] == ["already-allowed", "added", "added"]
    assert allowed(app) == {A, B, C}
    assert chain.nonce(owner.address) == nonce + 3  # nothing was sent twice
    again = added(app, devices, owner)
    assert [status for _, status in statuses(again)] == ["already-allowed"] * 3
    assert chain.nonce(owner.address) == nonce + 3


def test_lost_answers_still_count_what_the_node_executed(
    chain: Chain, owner: Signer, app: AppAuth, proxied_app: AppAuth, proxy: FlakyProxy
) -> None:
    nonce = chain.nonce(owner.address)
    # the node executes the second and third sends but every answer after the first is lost
    proxy.fail_method("eth_sendRawTransaction", "lose", after=1)
    report = added(proxied_app, [A, B, C], owner, timeout=5)
    assert [status for _, status in statuses(report)] == ["added", "added", "failed"]
    assert allowed(app) == {A, B}
    assert chain.nonce(owner.address) == nonce + 2


def test_addable_nodes_are_inventory_nodes_not_allowed_yet(chain: Chain, owner: Signer, app: AppAuth) -> None:
    send(chain, owner, app.add_device(B))
    offered = addable_nodes(app, INVENTORY)
    assert offered == [DeviceTarget(A, "prod1"), DeviceTarget(C, "edge"), DeviceTarget(D, "Edge")]
