"""The control plane served over real HTTP with watching installed: the measured flow (a firmware update →
a drift alert at a local receiver; warden_app_drifted_nodes 1 until the fix, then 0), /api/alerts, /metrics,
and `warden alerts …` through WARDEN_API_URL / WARDEN_API_TOKEN."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.chain import deploy_app, send
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.control_plane import PlaneWorld, add_node, register
from tests.support.dashboard import sign_in
from tests.support.http_server import serve
from tests.support.processes import wait_until
from tests.watch.receiver import receiver
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.kms.decision_tally import DecisionTally
from warden.watch.alerts import Alert, AppRef
from warden.watch.delivery import Deliverer
from warden.watch.metrics import render, workspace_registry
from warden.watch.payloads import verify_signature
from warden.watch.store import AlertStore
from warden.web.app import create_control_plane_app

OLD6, NEW6, DEV5 = (bytes([n]) * 32 for n in (0x06, 0x66, 0x05))
COMPOSE = bytes([0xC0]) * 32
PASS_EVERY = 0.2
PATIENCE = 30.0  # how long a test waits for the background loop before failing (not a timing assertion)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WARDEN_API_URL", "WARDEN_API_TOKEN", "WARDEN_PROFILE", "WARDEN_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry, world: PlaneWorld) -> AppAuth:
    deployed = deploy_app(chain, owner, kms, device_id=OLD6, compose_hash=COMPOSE)
    send(chain, owner, deployed.add_device(DEV5))
    add_node(world, "prod5", DEV5)
    add_node(world, "prod6", OLD6)
    register(world, deployed)
    for name, node in (("shared-key-demo-1", "prod5"), ("shared-key-demo-2", "prod6")):
        world.fleet.add_cvm(world.workspace, name, app=deployed.address, node=node, compose_hash=COMPOSE,
                            status="running")  # fmt: skip
    return deployed


@pytest.fixture
def api(world: PlaneWorld) -> Iterator[str]:
    """The control plane with the watcher looping in the background, on 127.0.0.1."""
    with serve(create_control_plane_app(world.plane, watch_every_seconds=PASS_EVERY)) as url:
        yield url


def env(api: str, world: PlaneWorld) -> dict[str, str]:
    return {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token}


def drifted(client: httpx.Client) -> str | None:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith('warden_app_drifted_nodes{app="shared-key-demo"} '):
            return line.rsplit(" ", 1)[1]
    return None


def test_a_firmware_update_reaches_the_webhook_and_the_metric_until_the_fix(
    world: PlaneWorld, app: AppAuth, api: str, chain: Chain, owner: Signer
) -> None:
    with receiver() as hook, world.client(api) as client:
        added = ok(warden("alerts", "add-webhook", hook.url, "--json", env=env(api, world)))
        wait_until(lambda: drifted(client) == "0.0", PATIENCE, what="the first pass read the app")

        world.fleet.record_identity("prod6", b"\x76" * 16, NEW6)  # as `warden devnet node update-firmware prod6`
        (got,) = wait_until(hook.answered, PATIENCE, what="the drift alert reached the receiver")
        assert verify_signature(added["secret"], got.headers["x-warden-timestamp"], got.body,
                                got.headers["x-warden-signature"])  # fmt: skip
        alert = got.json()["alert"]
        fix = f"warden allow-devices add {app.address} {hex0x(NEW6)} --wait"
        assert alert["kind"] == "drift" and alert["fix"] == fix
        for named in ("prod6", hex0x(NEW6), "shared-key-demo", fix):
            assert named in alert["message"]
        assert drifted(client) == "1.0"

        outcome = send(chain, owner, app.add_device(NEW6))  # the fix, reported as sent through warden
        assert client.post("/api/alerts/sent-txs", json={"chain_id": chain.chain_id, "tx": outcome.tx_hash,
                                                         "app": app.address}).json() == {"recorded": True}  # fmt: skip
        wait_until(lambda: drifted(client) == "0.0", PATIENCE, what="the fix was seen")
        listed = ok(warden("alerts", "ls", "--alerts", "--json", env=env(api, world)))["alerts"]
        assert [(a["kind"], a["subject"], a["resolved_at"] is not None) for a in listed] == [("drift", "prod6", True)]
        assert [(d["status"], d["attempts"]) for d in listed[0]["deliveries"]] == [("delivered", 1)]
        assert len(hook.answered()) == 1  # sent once, however many passes saw it

    with sign_in(api, world.token) as browser:
        page = browser.get("/alerts")
    assert page.status_code == 200
    assert 'data-kind="drift"' in page.text and hex0x(NEW6) in page.text and hook.url in page.text
    assert "delivered (1)" in page.text and added["secret"] not in page.text
    assert httpx.get(api + "/alerts").headers["location"].startswith("/login")  # no session: sign in first


def test_metrics_name_every_series_with_its_value(world: PlaneWorld, app: AppAuth, api: str) -> None:
    with world.client(api) as client:
        wait_until(lambda: drifted(client) == "0.0", PATIENCE, what="the first pass read the app")
        response = client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert httpx.get(api + "/metrics").status_code == 401  # a workspace's metrics need its token
    for line in (
        'warden_app_allowed_devices{app="shared-key-demo"} 2.0',
        'warden_app_allowed_compose_hashes{app="shared-key-demo"} 1.0',
        'warden_app_allow_any_device{app="shared-key-demo"} 0.0',
        'warden_app_chain_head_lag_blocks{app="shared-key-demo"}',
        'warden_node_seconds_since_attestation{node="prod5"}',
        'warden_node_seconds_since_attestation{node="prod6"}',
    ):
        assert line in text, line


def test_webhook_and_kms_decisions_by_reason(world: PlaneWorld, app: AppAuth) -> None:
    store = AlertStore(world.fleet)
    tally = DecisionTally()
    tally.record("kms", True, "")
    tally.record("kms", False, "Device not allowed")
    tally.record("webhook", False, "Device not allowed")
    tally.record("webhook", False, "authorization backend unavailable: ReadTimeout")
    with receiver(500) as hook:
        store.add_webhook(world.workspace, hook.url)
        ref = AppRef(app.address, app.chain.chain_id, "shared-key-demo")
        store.raise_alerts(world.workspace, [Alert("a" * 32, "drift", ref, "prod6", "m", None)])
        sender = Deliverer(store, timeout=0.3)
        try:
            sender.deliver_due()
        finally:
            sender.close()
    text = render(workspace_registry(world.workspace, world.fleet, store, decisions=tally.snapshot())).decode()
    assert 'warden_webhook_deliveries{reason="http-500",status="pending"} 1.0' in text
    assert 'warden_kms_decisions_total{allowed="true",reason="allowed",service="kms"} 1.0' in text
    assert 'warden_kms_decisions_total{allowed="false",reason="Device not allowed",service="webhook"} 1.0' in text
    assert (
        'warden_kms_decisions_total{allowed="false",reason="authorization backend unavailable",service="webhook"} 1.0'
        in text
    )
    assert 'warden_alerts_open{kind="drift"} 1.0' in text


def test_the_alerts_commands_through_the_api(world: PlaneWorld, api: str, dead_url: str) -> None:
    with receiver() as hook:
        added = ok(warden("alerts", "add-webhook", hook.url, "--format", "slack", "--json", env=env(api, world)))
        assert added["format"] == "slack" and added["secret"].startswith("whsec_")
        table = warden("alerts", "add-webhook", dead_url + "/x", env=env(api, world))
        assert table.exit_code == 0 and "signing secret (shown only now): whsec_" in table.stdout
        hooks = ok(warden("alerts", "ls", "--json", env=env(api, world)))["webhooks"]
        assert [(h["url"], h["format"]) for h in hooks] == [(hook.url, "slack"), (dead_url + "/x", "json")]
        assert all("secret" not in h for h in hooks)

        tested = warden("alerts", "test", "--json", env=env(api, world))
        assert tested.exit_code == 1
        results = tested.json()["results"]  # still exactly one JSON document
        assert [(r["url"], r["ok"]) for r in results] == [(hook.url, True), (dead_url + "/x", False)]
        assert "1 of 2 webhook(s) did not accept the test alert" in tested.stderr
        assert "Test alert" in hook.answered()[0].json()["text"]
        only = ok(warden("alerts", "test", "--webhook", str(added["id"]), "--json", env=env(api, world)))
        assert [r["ok"] for r in only["results"]] == [True]

        removed = ok(warden("alerts", "rm", str(hooks[1]["id"]), "--json", env=env(api, world)))
        assert removed["url"] == dead_url + "/x"
        assert len(ok(warden("alerts", "ls", "--json", env=env(api, world)))["webhooks"]) == 1


def test_bad_inputs_get_clear_errors_and_change_nothing(world: PlaneWorld, api: str) -> None:
    assert_clean_error(warden("alerts", "add-webhook", "ftp://example.com/x", env=env(api, world)), 2,
                       "invalid webhook URL 'ftp://example.com/x'")  # fmt: skip
    assert_clean_error(warden("alerts", "add-webhook", "https://example.com/x", "--format", "xml",
                              env=env(api, world)), 2, "invalid webhook format 'xml'")  # fmt: skip
    assert_clean_error(warden("alerts", "rm", "999", env=env(api, world)), 2, "no webhook 999 in workspace acme")
    assert_clean_error(warden("alerts", "ls", env={"WARDEN_API_URL": api, "WARDEN_API_TOKEN": "wdn_wrong_token_123"}),
                       1, "refused the API token")  # fmt: skip
    assert ok(warden("alerts", "ls", "--json", env=env(api, world))) == {"webhooks": []}
