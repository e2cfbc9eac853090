"""The measured flow on a whole devnet: `warden devnet node update-firmware prod6` → a signed drift alert
naming prod6, its new device id, shared-key-demo and the fix command reaches a webhook receiver on
127.0.0.1, and warden_app_drifted_nodes{app="shared-key-demo"} reads 1 until the fix, then 0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.devnet_runbook import Devnet
from tests.support.processes import wait_until
from tests.watch.receiver import receiver
from warden.devnet.fleet import Paths, control_plane, load_pki, workspace
from warden.devnet.state import load_state
from warden.fleet.store import WorkspaceRef
from warden.watch.delivery import Deliverer
from warden.watch.loop import WatchLoop
from warden.watch.metrics import render, workspace_registry
from warden.watch.payloads import verify_signature
from warden.watch.store import AlertStore
from warden.watch.watcher import Watcher
from warden.web.plane import ControlPlane

PATIENCE = 60.0  # how long to wait for the background loop before failing (not a timing assertion)


@pytest.fixture
def watched(devnet: Devnet) -> Iterator[tuple[ControlPlane, WorkspaceRef, AlertStore]]:
    """The devnet's control plane with a watcher looping over its inventory (as the served one does)."""
    paths = Paths(devnet.home)
    state = load_state(devnet.home)
    assert state is not None
    plane = control_plane(paths, state, load_pki(paths))
    store = AlertStore(plane.fleet)
    deliverer = Deliverer(store)
    loop = WatchLoop(Watcher(plane.fleet, plane, store, deliverer), every_seconds=0.2).start()
    try:
        yield plane, workspace(plane), store
    finally:
        loop.stop()
        deliverer.close()
        plane.close()


def drifted(plane: ControlPlane, ref: WorkspaceRef, store: AlertStore) -> str | None:
    text = render(workspace_registry(ref, plane.fleet, store)).decode()
    for line in text.splitlines():
        if line.startswith('warden_app_drifted_nodes{app="shared-key-demo"} '):
            return line.rsplit(" ", 1)[1]
    return None


def test_a_firmware_update_is_a_drift_alert_at_the_webhook_and_a_metric_until_the_fix(
    devnet: Devnet, watched: tuple[ControlPlane, WorkspaceRef, AlertStore]
) -> None:
    plane, ref, store = watched
    with receiver() as hook:
        secret = store.add_webhook(ref, hook.url).secret
        wait_until(lambda: drifted(plane, ref, store) == "0.0", PATIENCE, what="the first pass read shared-key-demo")

        update = devnet.run("devnet", "node", "update-firmware", "prod6")
        assert update.exit_code == 0, update.stderr
        new = devnet.device_of("prod6")
        (got,) = wait_until(hook.answered, PATIENCE, what="the drift alert reached the receiver")
        assert verify_signature(secret, got.headers["x-warden-timestamp"], got.body, got.headers["x-warden-signature"])
        alert = got.json()["alert"]
        fix = f"warden allow-devices add {devnet.app} {new} --wait"
        assert alert["kind"] == "drift" and alert["fix"] == fix
        for named in ("prod6", new, "shared-key-demo", fix):
            assert named in alert["message"], named
        assert drifted(plane, ref, store) == "1.0"

        fixed = devnet.run("allow-devices", "add", devnet.app, "prod6", "--wait")
        assert fixed.exit_code == 0, fixed.stderr
        wait_until(lambda: drifted(plane, ref, store) == "0.0", PATIENCE, what="the fix was seen")
        drift_alerts = [a for a in store.alerts(ref) if a.kind == "drift"]
        assert [(a.subject, a.resolved_at is not None) for a in drift_alerts] == [("prod6", True)]
        assert [a.json()["alert"]["kind"] for a in hook.answered()].count("drift") == 1  # sent once
