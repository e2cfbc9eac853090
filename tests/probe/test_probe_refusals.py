"""Reports the control plane refuses (over real HTTP, with quotes from the unmodified dstack-sdk): each says why,
and none changes the node's recorded identity or burns the nonce of an honest probe."""

from __future__ import annotations

import json
from typing import Any

import httpx
from dstack_sdk import DstackClient

from tests.probe.conftest import ProbeWorld, control_plane_app
from tests.support.http_server import serve
from warden.fleet.probe_nonces import DEFAULT_TTL_SECONDS, ProbeNonces
from warden.fleet.store import Fleet
from warden.identity.probe_binding import probe_report_data
from warden.web.plane import ControlPlane


def take_nonce(api: httpx.Client, node: str) -> str:
    answer = api.post("/api/probe/nonce", json={"node": node})
    assert answer.status_code == 200, answer.text
    nonce: str = answer.json()["nonce"]
    return nonce


def report(world: ProbeWorld, node: str, nonce: str, *, guest: str | None = None,
           report_data: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    """The probe's report: GetQuote (dstack-sdk) on `guest`'s CVM binding `report_data` (default: nonce, node)."""
    bound = report_data if report_data is not None else probe_report_data(bytes.fromhex(nonce[2:]), node)
    quote = DstackClient(guest or world.guests[node]).get_quote(bound)
    return {"node": node, "nonce": nonce, "quote": quote.quote, "event_log": quote.event_log}


def refused(answer: httpx.Response, status: int, *phrases: str) -> None:
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    for phrase in phrases:
        assert phrase in detail, (phrase, detail)


def test_a_nonce_answer_is_fresh_and_valid_for_five_minutes(world: ProbeWorld) -> None:
    with world.api() as api:
        first, second = (api.post("/api/probe/nonce", json={"node": "prod5"}).json() for _ in range(2))
    assert first["node"] == "prod5" and first["nonce"] != second["nonce"] and len(first["nonce"]) == 66
    assert first["expires_at"] == int(world.clock.now) + DEFAULT_TTL_SECONDS


def test_a_replayed_report_is_refused(world: ProbeWorld) -> None:
    with world.api() as api:
        body = report(world, "prod5", take_nonce(api, "prod5"))
        assert api.post("/api/probe/report", json=body).status_code == 200
        before = world.node_state("prod5")
        world.clock.now += 1
        refused(api.post("/api/probe/report", json=body), 403, "was already used", "replayed probe report")
    assert world.node_state("prod5") == before  # last_attested_at included


def test_an_expired_nonce_is_refused(world: ProbeWorld) -> None:
    with world.api() as api:
        body = report(world, "prod5", take_nonce(api, "prod5"))
        world.clock.now += DEFAULT_TTL_SECONDS
        refused(api.post("/api/probe/report", json=body), 403, "expired 1 s ago", "take a fresh one")
    assert world.node_state("prod5")["history"] == []


def test_a_quote_not_binding_the_nonce_is_refused_and_the_nonce_survives(world: ProbeWorld) -> None:
    with world.api() as api:
        nonce = take_nonce(api, "prod5")
        for report_data in (bytes.fromhex(nonce[2:]), probe_report_data(bytes(32), "prod5")):
            unbound = report(world, "prod5", nonce, report_data=report_data)
            refused(api.post("/api/probe/report", json=unbound), 403, "does not bind nonce", "sha512(")
        assert world.node_state("prod5")["history"] == []
        # nothing was lost: the honest report with the same nonce is still recorded
        answer = api.post("/api/probe/report", json=report(world, "prod5", nonce))
        assert answer.status_code == 200, answer.text
        assert answer.json()["device_id"] == "0x" + world.nodes["prod5"].device_id.hex()


def test_a_nonce_or_quote_for_another_node_is_refused(world: ProbeWorld) -> None:
    with world.api() as api:
        for_prod6 = take_nonce(api, "prod6")
        body = report(world, "prod5", for_prod6)
        refused(
            api.post("/api/probe/report", json=body), 403, f"nonce {for_prod6} was issued for node prod6, not prod5"
        )
        # a quote bound to prod6's name, posted as prod5's report
        nonce = take_nonce(api, "prod5")
        body = report(world, "prod5", nonce, report_data=probe_report_data(bytes.fromhex(nonce[2:]), "prod6"))
        refused(api.post("/api/probe/report", json=body), 403, "does not bind nonce", "for node prod5")
    assert world.node_state("prod5")["history"] == [] and world.node_state("prod6")["history"] == []


def test_a_tampered_event_log_or_a_forged_quote_is_bad_input(world: ProbeWorld) -> None:
    with world.api() as api:
        nonce = take_nonce(api, "prod5")
        body = report(world, "prod5", nonce)
        events = json.loads(body["event_log"])
        events[1]["event_payload"] = "ab" * 20
        events[1]["digest"] = ""
        refused(api.post("/api/probe/report", json=body | {"event_log": json.dumps(events)}), 400,
                "does not replay to the quote's RTMR3")  # fmt: skip
        refused(api.post("/api/probe/report", json=body | {"event_log": ""}), 400, "needs the event log")
        forged = body["quote"][:1200] + ("0" if body["quote"][1200] != "0" else "1") + body["quote"][1201:]
        refused(api.post("/api/probe/report", json=body | {"quote": forged}), 400, "quote does not verify")
        refused(api.post("/api/probe/report", json=body | {"nonce": "zz"}), 400, "invalid nonce 'zz'")
        refused(api.post("/api/probe/report", json=body | {"node": "nope"}), 403, "was issued for node prod5")
        refused(api.post("/api/probe/nonce", json={"node": "nope"}), 404, "unknown node 'nope'")
        assert api.post("/api/probe/report", json=body).status_code == 200  # the nonce was never burnt
    assert httpx.post(world.url + "/api/probe/nonce", json={"node": "prod5"}).status_code == 401


def test_control_plane_workers_sharing_the_database_agree_on_nonces(world: ProbeWorld) -> None:
    # a second worker: its own engine, app and nonce book over the same database
    other = ControlPlane(Fleet.open(world.fleet.engine.url.render_as_string(hide_password=False)), [],
                         attestation=world.plane.attestation)  # fmt: skip
    other_fleet = other.fleet
    with serve(control_plane_app(other, ProbeNonces(other_fleet, clock=world.clock))) as other_url, world.api() as api:
        body = report(world, "prod5", take_nonce(api, "prod5"))
        headers = {"Authorization": f"Bearer {world.token}"}
        assert httpx.post(other_url + "/api/probe/report", json=body, headers=headers).status_code == 200
        refused(api.post("/api/probe/report", json=body), 403, "was already used")
    other.close()
    assert len(world.node_state("prod5")["history"]) == 1
