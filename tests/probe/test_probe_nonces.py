"""Probe nonces in the inventory database (SQLite and PostgreSQL): single use even under a race, expiring,
bound to a workspace and a node, and given back when a report could not be recorded."""

from __future__ import annotations

import threading

import pytest

from tests.probe.conftest import Clock
from warden.errors import Denied
from warden.fleet.probe_nonces import ProbeNonces, ProbeRefused
from warden.fleet.store import Fleet, NotFound


def test_a_nonce_is_spent_once_even_when_reports_race(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    fleet.add_node("prod5")
    fleet.grant(acme, "prod5")
    clock = Clock()
    nonces = ProbeNonces(fleet, clock=clock, ttl_seconds=60)
    issued = nonces.issue(acme, "prod5")
    assert issued.expires_at == int(clock.now) + 60 and len(issued.nonce) == 32
    workers = [ProbeNonces(Fleet(fleet.engine), clock=clock) for _ in range(4)]  # other control-plane workers
    outcomes: list[str] = []
    start = threading.Barrier(len(workers))

    def report(book: ProbeNonces) -> None:
        start.wait()
        try:
            book.spend(acme, "prod5", issued.nonce)
            outcomes.append("spent")
        except ProbeRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=report, args=(book,)) for book in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[-1] == "spent" and outcomes.count("spent") == 1
    assert all("already used" in o for o in outcomes if o != "spent")


def test_expiry_workspace_node_and_giving_back(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    other, _ = fleet.create_workspace("other")
    fleet.add_node("prod5")
    fleet.grant(acme, "prod5")
    clock = Clock()
    nonces = ProbeNonces(fleet, clock=clock, ttl_seconds=60)
    with pytest.raises(NotFound):
        nonces.issue(other, "prod5")  # not a node `other` may deploy to
    issued = nonces.issue(acme, "prod5")
    with pytest.raises(ProbeRefused, match="did not issue it to this workspace"):
        nonces.check(other, "prod5", issued.nonce)
    with pytest.raises(ProbeRefused, match="was issued for node prod5, not prod6"):
        nonces.spend(acme, "prod6", issued.nonce)
    spent_at = nonces.spend(acme, "prod5", issued.nonce)
    nonces.unspend(acme, issued.nonce, spent_at)  # recording failed: the probe may retry with it
    clock.now += 59
    nonces.spend(acme, "prod5", issued.nonce)
    late = nonces.issue(acme, "prod5")
    clock.now += 60
    with pytest.raises(Denied, match="expired 1 s ago"):
        nonces.spend(acme, "prod5", late.nonce)
