"""The watcher against anvil: drift after a device id change (and its fix), a compose hash removed,
allowAnyDevice switched on, ownership moved, allowlist changes not made through warden; each alert once."""

from __future__ import annotations

import pytest

from tests.support.chain import deploy_app, send
from tests.support.control_plane import add_node, register
from tests.watch.conftest import Watching
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome
from warden.watch.alerts import AppChainState, Placement, drifted_nodes
from warden.watch.watcher import Watcher

OLD6, NEW6, DEV5 = (bytes([n]) * 32 for n in (0x06, 0x66, 0x05))
COMPOSE, OTHER_COMPOSE = bytes([0xC0]) * 32, bytes([0xC1]) * 32


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry, w: Watching) -> AppAuth:
    """shared-key-demo allowing prod5's and prod6's devices and one compose hash; a running CVM on each node."""
    deployed = deploy_app(chain, owner, kms, device_id=OLD6, compose_hash=COMPOSE)
    send(chain, owner, deployed.add_device(DEV5))
    add_node(w.world, "prod5", DEV5)
    add_node(w.world, "prod6", OLD6)
    register(w.world, deployed)
    for name, node in (("shared-key-demo-1", "prod5"), ("shared-key-demo-2", "prod6")):
        w.world.fleet.add_cvm(w.world.workspace, name, app=deployed.address, node=node, compose_hash=COMPOSE,
                              status="running")  # fmt: skip
    return deployed


def through_warden(w: Watching, chain: Chain, outcome: TxOutcome) -> None:
    assert outcome.tx_hash is not None
    w.store.record_sent_tx(chain.chain_id, outcome.tx_hash)


def kinds(w: Watching) -> list[str]:
    return sorted(a.kind for a in w.store.alerts(w.world.workspace))


def test_a_new_device_id_on_a_node_running_the_app_is_drift_until_the_device_is_allowed(
    w: Watching, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    first = w.watcher.run_once()
    assert first.raised == [] and first.errors == [] and first.apps == 1
    (status,) = w.store.statuses(w.world.workspace)
    assert (status.app_name, status.drifted_nodes, status.devices, status.compose_hashes) == (
        "shared-key-demo", 0, 2, 1,
    )  # fmt: skip

    w.world.fleet.record_identity("prod6", b"\x76" * 16, NEW6)  # a firmware update: prod6 has a new device id
    second = w.watcher.run_once()
    (alert,) = w.store.alerts(w.world.workspace)
    assert second.raised == [alert.id]
    assert alert.kind == "drift" and alert.subject == "prod6" and alert.resolved_at is None
    for named in ("prod6", hex0x(NEW6), "shared-key-demo", "shared-key-demo-2"):
        assert named in alert.message
    assert alert.fix == f"warden allow-devices add {app.address} {hex0x(NEW6)} --wait"
    assert alert.fix in alert.message
    assert alert.details == {"node": "prod6", "device_id": hex0x(NEW6), "cvms": ["shared-key-demo-2"]}
    assert w.store.statuses(w.world.workspace)[0].drifted_nodes == 1

    assert w.watcher.run_once().raised == []  # seen again: the same alert, not a new one
    assert len(w.store.alerts(w.world.workspace)) == 1

    through_warden(w, chain, send(chain, owner, app.add_device(NEW6)))  # the fix, sent by warden
    fixed = w.watcher.run_once()
    assert fixed.raised == [] and fixed.resolved == [alert.id]
    assert w.store.statuses(w.world.workspace)[0].drifted_nodes == 0
    (after,) = w.store.alerts(w.world.workspace)
    assert after.resolved_at is not None

    through_warden(w, chain, send(chain, owner, app.remove_device(NEW6)))  # the drift is back: told again, once
    assert w.watcher.run_once().raised == [alert.id]
    assert w.watcher.run_once().raised == []
    assert w.store.statuses(w.world.workspace)[0].drifted_nodes == 1


def test_a_node_without_running_cvms_of_the_app_is_not_drift(w: Watching, app: AppAuth) -> None:
    w.world.fleet.set_cvm_status(w.world.workspace, "shared-key-demo-2", "stopped")
    w.world.fleet.record_identity("prod6", b"\x76" * 16, NEW6)
    assert w.watcher.run_once().raised == []


def test_a_running_cvm_whose_compose_hash_was_removed_is_alerted(
    w: Watching, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    w.watcher.run_once()
    through_warden(w, chain, send(chain, owner, app.add_compose_hash(OTHER_COMPOSE)))
    through_warden(w, chain, send(chain, owner, app.remove_compose_hash(COMPOSE)))
    w.watcher.run_once()
    alerts = w.store.alerts(w.world.workspace)
    assert sorted(a.subject for a in alerts) == ["shared-key-demo-1", "shared-key-demo-2"]
    assert {a.kind for a in alerts} == {"compose-hash-not-allowed"}
    assert all(hex0x(COMPOSE) in a.message and "no longer allows" in a.message for a in alerts)
    assert w.store.statuses(w.world.workspace)[0].compose_hashes == 1


def test_allow_any_device_switched_on_is_alerted_once_and_hides_drift(
    w: Watching, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    w.watcher.run_once()
    switched = send(chain, owner, app.set_allow_any_device(True))
    through_warden(w, chain, switched)
    w.world.fleet.record_identity("prod6", b"\x76" * 16, NEW6)
    w.watcher.run_once()
    w.watcher.run_once()
    (alert,) = w.store.alerts(w.world.workspace)
    assert alert.kind == "allow-any-device-on"
    assert alert.details["tx"] == switched.tx_hash
    assert alert.fix == f"warden allow-devices disallow-any {app.address}"
    assert w.store.statuses(w.world.workspace)[0].drifted_nodes == 0  # any device boots: nothing drifts


def test_ownership_moved_is_alerted(w: Watching, app: AppAuth, chain: Chain, owner: Signer, third: Signer) -> None:
    w.watcher.run_once()
    send(chain, owner, app.transfer_ownership(third.address))
    assert w.watcher.run_once().raised == []  # only started: the owner is still the owner
    accepted = send(chain, third, AppAuth(chain, app.address).accept_ownership())
    w.watcher.run_once()
    (alert,) = w.store.alerts(w.world.workspace)
    assert alert.kind == "ownership-moved" and alert.subject == third.address
    assert owner.address in alert.message and third.address in alert.message
    assert alert.details["tx"] == accepted.tx_hash


def test_allowlist_changes_not_sent_through_warden_are_alerted_and_those_sent_through_it_are_not(
    w: Watching, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    w.watcher.run_once()  # the deployment's own events (initialize) are history: no alert
    assert w.store.alerts(w.world.workspace) == []
    ours = bytes([0x0A]) * 32
    theirs = bytes([0x0B]) * 32
    through_warden(w, chain, send(chain, owner, app.add_device(ours)))
    outside = send(chain, owner, app.add_device(theirs))  # e.g. cast send, another tool
    raised = w.watcher.run_once().raised
    (alert,) = w.store.alerts(w.world.workspace)
    assert raised == [alert.id]
    assert alert.kind == "out-of-band-change" and alert.subject == outside.tx_hash
    assert hex0x(theirs) in alert.message and "not made through warden" in alert.message
    assert alert.details["device_id"] == hex0x(theirs)
    assert w.watcher.run_once().raised == []


def test_an_app_on_a_chain_nobody_serves_is_reported_and_the_others_are_still_watched(
    w: Watching, app: AppAuth
) -> None:
    w.world.fleet.register_app(w.world.workspace, "0x" + "42" * 20, chain_id=999_999, name="elsewhere")
    w.world.fleet.record_identity("prod6", b"\x76" * 16, NEW6)
    report = w.watcher.run_once()
    assert report.apps == 2
    (error,) = report.errors
    assert "elsewhere" in error and "999999" in error and "no RPC URL" in error
    assert kinds(w) == ["drift"]
    statuses = {s.label: s for s in w.store.statuses(w.world.workspace)}
    assert statuses["elsewhere"].error is not None and statuses["elsewhere"].head is None


def test_drifted_nodes_counts_nodes_not_cvms() -> None:

    state = AppChainState(10, frozenset({OLD6}), frozenset(), False, "0x" + "00" * 20)
    placements = [
        Placement("a", "prod6", NEW6, None, "running"),
        Placement("b", "prod6", NEW6, None, "starting"),
        Placement("c", "prod5", DEV5, None, "created"),
        Placement("d", "prod9", None, None, "running"),
    ]
    assert drifted_nodes(state, placements) == 1


def test_a_change_is_judged_out_of_band_only_after_the_grace_given_to_warden_to_record_it(
    w: Watching, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    patient = Watcher(w.world.fleet, w.world.plane, w.store, w.deliverer, out_of_band_grace_seconds=60)
    patient.run_once()
    outcome = send(chain, owner, app.add_device(bytes([0x0C]) * 32))
    # the chain's clock, not this machine's: earlier tests' anvil_mine may have moved it ahead
    w.clock.now = int(chain.rpc.call("eth_getBlockByNumber", [hex(outcome.block_number or 0), False])["timestamp"], 16)
    assert patient.run_once().raised == []  # just mined: warden may still be recording it as its own
    w.clock.advance(61)
    (raised,) = patient.run_once().raised
    (alert,) = w.store.alerts(w.world.workspace)
    assert alert.id == raised and alert.subject == outcome.tx_hash
