"""The watcher's tables on SQLite and PostgreSQL: webhooks per workspace (bad input refused, nothing
changed), alerts deduplicated by id with one delivery per webhook, resolution, sent transactions, baselines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import DATABASES, database_url
from tests.watch.conftest import Clock
from warden.errors import BadInput, NotFound
from warden.fleet.store import Fleet
from warden.watch.alerts import Alert, AppChainState, AppRef, alert_id
from warden.watch.store import AlertStore

APP = AppRef("0x" + "11" * 20, 31337, "demo")
TX = "0x" + "ab" * 32


def alert(subject: str, *, ongoing: bool = True) -> Alert:
    return Alert(alert_id("drift", APP.chain_id, APP.address, subject, "x"), "drift", APP, subject, f"about {subject}",
                 None, {"node": subject}, ongoing=ongoing)  # fmt: skip


@pytest.fixture(params=DATABASES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    with database_url(request.param, tmp_path) as url:
        fleet = Fleet.open(url)
        try:
            AlertStore(fleet)  # creating the tables twice (a second worker) is harmless
            yield AlertStore(fleet, clock=Clock(1_000_000))
        finally:
            fleet.close()


def test_webhooks_belong_to_their_workspace_and_bad_ones_are_refused(store: AlertStore) -> None:
    acme, _ = store.fleet.create_workspace("acme")
    beta, _ = store.fleet.create_workspace("beta")
    hook = store.add_webhook(acme, " https://hooks.example.com/warden ", "SLACK")
    assert (hook.url, hook.format) == ("https://hooks.example.com/warden", "slack")
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
    assert "secret" not in hook.as_json() and hook.as_json(with_secret=True)["secret"] == hook.secret
    for url, phrase in (("ftp://x/y", "invalid webhook URL"), ("hooks.example.com", "invalid webhook URL"),
                        ("http://", "invalid webhook URL"), ("http://a b/", "spaces")):  # fmt: skip
        with pytest.raises(BadInput, match=phrase):
            store.add_webhook(acme, url)
    with pytest.raises(BadInput, match="invalid webhook format 'xml': choose one of json, slack"):
        store.add_webhook(acme, "https://ok.example.com/", "xml")
    with pytest.raises(BadInput, match="already configured"):
        store.add_webhook(acme, "https://hooks.example.com/warden")
    assert [h.id for h in store.webhooks(acme)] == [hook.id] and store.webhooks(beta) == []
    with pytest.raises(NotFound, match=f"no webhook {hook.id} in workspace beta"):
        store.remove_webhook(beta, hook.id)
    assert store.remove_webhook(acme, hook.id) == hook
    assert store.webhooks(acme) == []


def test_an_alert_is_stored_once_and_queued_once_per_webhook(store: AlertStore) -> None:
    acme, _ = store.fleet.create_workspace("acme")
    first = store.add_webhook(acme, "https://a.example.com/")
    second = store.add_webhook(acme, "https://b.example.com/")
    assert store.raise_alerts(acme, [alert("prod6")]) == [alert("prod6").id]
    assert store.raise_alerts(acme, [alert("prod6"), alert("prod9")]) == [alert("prod9").id]
    due = store.due(2_000_000_000)
    assert sorted((d.alert.subject, d.webhook.id) for d in due) == [
        ("prod6", first.id), ("prod6", second.id), ("prod9", first.id), ("prod9", second.id),
    ]  # fmt: skip
    listed = store.alerts(acme)
    assert [a.subject for a in listed] == ["prod9", "prod6"]  # newest first
    assert [d.status for d in listed[0].deliveries] == ["pending", "pending"]
    assert store.delivery_counts(acme) == {("pending", "none"): 4}


def test_ongoing_alerts_that_are_gone_are_resolved_and_told_again_once_when_they_come_back(store: AlertStore) -> None:
    acme, _ = store.fleet.create_workspace("acme")
    store.add_webhook(acme, "https://a.example.com/")
    store.raise_alerts(acme, [alert("prod6"), alert("tx", ongoing=False)])
    assert store.raise_alerts(acme, [alert("prod6")]) == []  # still open: not news
    assert store.resolve_gone(acme, APP, []) == [alert("prod6").id]  # an event alert is never "gone"
    assert [a.subject for a in store.alerts(acme, open_only=True)] == ["tx"]
    assert store.raise_alerts(acme, [alert("prod6")]) == [alert("prod6").id]  # back: news again
    assert store.raise_alerts(acme, [alert("prod6")]) == []
    assert len(store.alerts(acme, open_only=True)) == 2
    assert sorted(d.alert.subject for d in store.due(2_000_000_000)) == ["prod6", "prod6", "tx"]


def test_sent_transactions_and_baselines(store: AlertStore) -> None:
    acme, _ = store.fleet.create_workspace("acme")
    store.record_sent_tx(31337, TX.upper().replace("0X", "0x"), app=APP.address, workspace=acme)
    store.record_sent_tx(31337, TX)  # twice is harmless
    assert store.sent_txs(31337, [TX, "0x" + "cd" * 32]) == {TX}
    assert store.sent_txs(1, [TX]) == set()
    with pytest.raises(BadInput, match="transaction hash"):
        store.record_sent_tx(31337, "0x1234")
    assert store.baseline(acme, APP, 100) == 100
    assert store.baseline(acme, APP, 250) == 100  # the first read's head stands
    store.save_status(acme, APP, AppChainState(250, frozenset({b"a" * 32}), frozenset(), True, "0x"), 0)
    store.save_status(acme, APP, None, None, "chain down")
    (status,) = store.statuses(acme)
    assert (status.head, status.devices, status.allow_any_device, status.error) == (250, 1, True, "chain down")
