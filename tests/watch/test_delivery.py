"""Alerts delivered to a real receiver on 127.0.0.1: signed (the HMAC verifies), json and slack, retried
with backoff after a 500 and after a timeout, kept when a receiver never answers, never sent twice."""

from __future__ import annotations

import hashlib
import hmac

from tests.watch.conftest import Watching
from tests.watch.receiver import Received, receiver
from warden.watch.alerts import Alert, AppRef, alert_id
from warden.watch.delivery import Deliverer
from warden.watch.payloads import verify_signature

APP = AppRef("0x" + "11" * 20, 31337, "shared-key-demo")


def drift(node: str = "prod6", device: str = "0x" + "66" * 32) -> Alert:
    fix = f"warden allow-devices add {APP.address} {device} --wait"
    return Alert(alert_id("drift", APP.chain_id, APP.address, node, device), "drift", APP, node,
                 f"drift: node {node} now has device id {device} … Fix: {fix}", fix,
                 {"node": node, "device_id": device, "cvms": ["shared-key-demo-2"]}, ongoing=True)  # fmt: skip


def deliveries(w: Watching) -> list[tuple[str, int, str | None]]:
    return [(d.status, d.attempts, d.last_error) for a in w.store.alerts(w.world.workspace) for d in a.deliveries]


def test_a_json_alert_is_signed_with_the_webhooks_secret(w: Watching) -> None:
    with receiver() as hook:
        added = w.store.add_webhook(w.world.workspace, hook.url)
        w.store.raise_alerts(w.world.workspace, [drift()])
        report = w.deliverer.deliver_due()
    (got,) = hook.answered()
    assert report.delivered == [(drift().id, added.id)]
    timestamp, signature = got.headers["x-warden-timestamp"], got.headers["x-warden-signature"]
    assert verify_signature(added.secret, timestamp, got.body, signature)
    # what a receiver in another language does: HMAC-SHA256(secret, timestamp "." body), hex
    expected = hmac.new(added.secret.encode(), timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert not verify_signature("whsec_other", timestamp, got.body, signature)
    assert not verify_signature(added.secret, timestamp, got.body + b" ", signature)
    body = got.json()
    assert body["type"] == "warden.alert"
    assert {k: body["alert"][k] for k in ("id", "kind", "app", "app_name", "subject", "fix")} == {
        "id": drift().id, "kind": "drift", "app": APP.address, "app_name": "shared-key-demo", "subject": "prod6",
        "fix": drift().fix,
    }  # fmt: skip
    assert got.headers["x-warden-alert-id"] == drift().id
    assert deliveries(w) == [("delivered", 1, None)]


def test_a_slack_webhook_gets_a_message_with_the_fix(w: Watching) -> None:
    with receiver() as hook:
        w.store.add_webhook(w.world.workspace, hook.url, "slack")
        w.store.raise_alerts(w.world.workspace, [drift()])
        w.deliverer.deliver_due()
    (got,) = hook.answered()
    text = got.json()["text"]
    assert "Device drift" in text and "prod6" in text and f"`{drift().fix}`" in text


def _retried_after(w: Watching, *script: int | str) -> list[Received]:
    with receiver(*script) as hook:
        w.store.add_webhook(w.world.workspace, hook.url)
        w.store.raise_alerts(w.world.workspace, [drift()])
        first = w.deliverer.deliver_due()
        assert first.delivered == [] and len(first.retrying) == 1
        assert w.deliverer.deliver_due().retrying == []  # the next try is not due yet: nothing is sent
        w.clock.advance(10)  # the first pause (Backoff.first_seconds in these tests)
        second = w.deliverer.deliver_due()
        assert len(second.delivered) == 1
        w.clock.advance(3600)
        assert w.store.raise_alerts(w.world.workspace, [drift()]) == []  # seen again: not new
        assert w.deliverer.deliver_due().delivered == []  # and not sent again
        return hook.answered()


def test_a_500_is_retried_after_the_backoff_and_the_alert_is_sent_once(w: Watching) -> None:
    got = _retried_after(w, 500)
    assert len(got) == 2 and got[0].body == got[1].body
    assert deliveries(w) == [("delivered", 2, None)]


def test_a_receiver_that_times_out_is_a_failed_attempt_not_a_lost_alert(w: Watching) -> None:
    got = _retried_after(w, "hang")
    assert len(got) == 2 and got[0].headers["x-warden-alert-id"] == got[1].headers["x-warden-alert-id"]
    assert deliveries(w) == [("delivered", 2, None)]


def test_the_pause_grows_and_a_receiver_that_never_answers_2xx_keeps_the_alert_as_failed(w: Watching) -> None:
    with receiver(500, 503, 500, 500) as hook:
        w.store.add_webhook(w.world.workspace, hook.url)
        w.store.raise_alerts(w.world.workspace, [drift()])
        assert len(w.deliverer.deliver_due().retrying) == 1
        w.clock.advance(10)
        assert len(w.deliverer.deliver_due().retrying) == 1
        w.clock.advance(10)
        assert w.deliverer.deliver_due().retrying == []  # the second pause is 20 s
        w.clock.advance(10)
        assert len(w.deliverer.deliver_due().retrying) == 1
        w.clock.advance(40)
        gave_up = w.deliverer.deliver_due()
        assert len(gave_up.failed) == 1 and "http-500" in gave_up.failed[0][2]
        assert deliveries(w) == [("failed", 4, f"http-500: {hook.url} answered HTTP 500")]
        w.clock.advance(10_000)
        assert w.deliverer.deliver_due().delivered == []  # given up: not retried on its own

        assert w.store.retry_failed(w.world.workspace) == 1  # the receiver is fixed: queue it again
        assert len(w.deliverer.deliver_due().delivered) == 1
        assert len(hook.answered()) == 5
    assert deliveries(w) == [("delivered", 1, None)]


def test_two_workers_never_send_the_same_delivery(w: Watching) -> None:
    with receiver() as hook:
        w.store.add_webhook(w.world.workspace, hook.url)
        w.store.raise_alerts(w.world.workspace, [drift()])
        (due,) = w.store.due(int(w.clock() * 1000))
        other = Deliverer(w.store, timeout=0.3)
        try:
            assert len(other.deliver_due().delivered) == 1  # the other worker sends it first
        finally:
            other.close()
        assert not w.store.claim(due, int(w.clock() * 1000) + 60_000)  # this one's claim loses
        assert w.deliverer.deliver_due().delivered == []
        assert len(hook.answered()) == 1


def test_an_alert_goes_to_every_webhook_of_its_workspace_only(w: Watching) -> None:
    other, _ = w.world.fleet.create_workspace("other")
    with receiver() as first, receiver() as second, receiver() as foreign:
        w.store.add_webhook(w.world.workspace, first.url)
        w.store.add_webhook(w.world.workspace, second.url, "slack")
        w.store.add_webhook(other, foreign.url)
        w.store.raise_alerts(w.world.workspace, [drift()])
        assert len(w.deliverer.deliver_due().delivered) == 2
        assert len(first.answered()) == len(second.answered()) == 1
        assert foreign.answered() == []


def test_the_test_send_reports_each_webhooks_answer(w: Watching, dead_url: str) -> None:
    with receiver(200, "hang") as hook:
        good = w.store.add_webhook(w.world.workspace, hook.url)
        dead = w.store.add_webhook(w.world.workspace, dead_url + "/hook")
        results = w.deliverer.send_test(w.world.workspace)
        assert [(r["webhook"], r["ok"], r["status"]) for r in results] == [(good.id, True, 200), (dead.id, False, None)]
        assert results[1]["error"].startswith(f"connection: cannot reach {dead_url}/hook")
        (slow,) = w.deliverer.send_test(w.world.workspace, good.id)
        assert slow["error"] == f"timeout: {hook.url} did not answer within 0.3 s"
        (got, _) = hook.answered()
    assert got.json()["alert"]["kind"] == "test"
    assert verify_signature(good.secret, got.headers["x-warden-timestamp"], got.body, got.headers["x-warden-signature"])
    assert w.store.alerts(w.world.workspace) == []  # a test is not an alert


def test_a_hanging_receiver_does_not_hold_up_the_others(w: Watching) -> None:
    with receiver("hang") as slow, receiver() as fine:
        w.store.add_webhook(w.world.workspace, slow.url)
        w.store.add_webhook(w.world.workspace, fine.url)
        w.store.raise_alerts(w.world.workspace, [drift(), drift("prod9")])
        report = w.deliverer.deliver_due()
        assert len(report.delivered) == 3 and len(report.retrying) == 1
        assert report.retrying[0][2].startswith("timeout: ")
        assert len(fine.answered()) == 2
