"""`ControlPlaneClient` against a control plane served over real HTTP: answers, and errors users can act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from tests.support.control_plane import PlaneWorld, add_node, plane_world, served
from tests.support.http_server import serve
from warden.chain.connection import Chain
from warden.errors import BadInput, OperationFailed
from warden.web.client import ControlPlaneClient
from warden.web.models import App

PROD5 = bytes([5]) * 32
APP = "0x" + "12" * 20
# answers as the control plane writes them, for a server that answers whatever a test says
NODE: dict[str, Any] = {
    "name": "prod5", "device_id": "0x" + PROD5.hex(), "ppid": "0x" + PROD5[:16].hex(), "region": "us-east",
    "status": "online", "former_device_ids": [], "tee_version": None, "tcb_status": None, "last_attested_at": 1,
}  # fmt: skip
CVM: dict[str, Any] = {
    "name": "demo-1", "uuid": "u-1", "instance_id": None, "app": APP, "app_name": "demo", "node": "prod5",
    "device_id": None, "compose_hash": None, "status": "running", "device_allowed": None, "status_reason": None,
    "updated_at": 1,
}  # fmt: skip


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> Iterator[PlaneWorld]:
    with plane_world("sqlite", tmp_path, chain) as built:
        add_node(built, "prod5", PROD5)
        yield built


@pytest.fixture
def base_url(world: PlaneWorld) -> Iterator[str]:
    with served(world) as url:
        yield url


def test_reads_and_writes_round_trip(world: PlaneWorld, base_url: str) -> None:
    with ControlPlaneClient(base_url + "/api/", world.token) as plane:  # a trailing /api is tolerated
        assert plane.workspace() == "acme"
        assert [n["device_id"] for n in plane.nodes()] == ["0x" + PROD5.hex()]
        assert plane.node("prod5")["history"][0]["device_id"] == "0x" + PROD5.hex()
        assert plane.add_app(APP, chain_id=31337, name="demo")["app"].lower() == APP
        created = plane.add_cvm("demo-1", app="demo", node="prod5", compose_hash="ab" * 32)
        assert plane.cvm(created["uuid"])["name"] == "demo-1"
        assert [c["name"] for c in plane.cvms("demo")] == ["demo-1"]
        assert plane.move_cvm("demo-1", "prod5")["node"] == "prod5"


def test_errors_carry_the_servers_words_and_never_the_token(world: PlaneWorld, base_url: str) -> None:
    with ControlPlaneClient(base_url, world.token) as plane:
        assert world.token not in repr(plane)
        with pytest.raises(BadInput, match="unknown node 'prod7'"):
            plane.node("prod7")
        with pytest.raises(BadInput, match=r"no CVM named 'demo\?1#x'"):
            plane.cvm("demo?1#x")  # escaped: still one path segment, not a query or a fragment
        with pytest.raises(BadInput, match="app: Field required"):
            plane._answer(App, "POST", "/apps", json={"chain_id": 1})  # FastAPI's validation list, as one line
    wrong = "wdn_wrong-token-for-this-plane"
    with ControlPlaneClient(base_url, wrong) as plane, pytest.raises(OperationFailed) as refused:
        plane.nodes()
    assert str(refused.value) == "the control plane refused the API token (WARDEN_API_TOKEN)"
    with pytest.raises(BadInput, match="invalid API token") as bad_token:
        ControlPlaneClient(base_url, "two words")
    assert "two words" not in str(bad_token.value)


def test_a_server_that_is_not_the_control_plane_is_named_as_such(world: PlaneWorld) -> None:
    async def page(_request: object) -> HTMLResponse:
        return HTMLResponse("<html>hello</html>")

    other = Starlette(routes=[Route("/api/nodes", page)])
    with serve(other) as url, ControlPlaneClient(url, world.token) as plane, pytest.raises(OperationFailed) as exc:
        plane.nodes()
    assert "not JSON" in str(exc.value) and "WARDEN_API_URL" in str(exc.value)


def test_answers_are_the_json_the_server_sent(world: PlaneWorld, base_url: str) -> None:
    """Checked against the models, each method still returns the server's JSON objects, value for value."""
    raw = httpx.Client(base_url=base_url + "/api", headers={"Authorization": f"Bearer {world.token}"})
    with raw, ControlPlaneClient(base_url, world.token) as plane:
        plane.add_app(APP, chain_id=31337, name="demo")
        plane.add_cvm("demo-1", app="demo", node="prod5", compose_hash="AB" * 32, instance_id="0xCD" + "00" * 19)
        assert plane.nodes() == raw.get("/nodes").json()["nodes"]
        assert plane.node("prod5") == raw.get("/nodes/prod5").json()
        assert plane.node_history("prod5") == raw.get("/nodes/prod5/history").json()["history"]
        assert plane.apps() == raw.get("/apps").json()["apps"]
        assert plane.app("demo") == raw.get("/apps/demo").json()
        assert plane.cvms() == raw.get("/cvms").json()["cvms"]
        cvm = plane.cvm("demo-1")
        assert cvm == raw.get("/cvms/demo-1").json()
        assert cvm["compose_hash"] == "0x" + "ab" * 32 and cvm["instance_id"] == "0xcd" + "00" * 19
        assert plane.set_cvm_status("demo-1", "running") == raw.get("/cvms/demo-1").json()


def fake_plane(answers: dict[str, Any]) -> Starlette:
    """A server that answers each /api path with the given JSON, whatever its shape."""

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse(answers[request.url.path])

    return Starlette(routes=[Route(path, answer, methods=["GET", "POST"]) for path in answers])


@pytest.mark.parametrize(
    ("path", "body", "call", "problem"),
    [
        ("/api/workspace", ["acme"], lambda p: p.workspace(),
         "answer: Input should be a valid dictionary or instance of WorkspaceAnswer"),
        ("/api/nodes", {"nodes": [{"name": "prod5"}]}, lambda p: p.nodes(), "nodes.0.device_id: Field required"),
        ("/api/nodes", {"node": []}, lambda p: p.nodes(), "nodes: Field required"),
        ("/api/nodes/prod5", NODE | {"device_id": "0x05", "history": []}, lambda p: p.node("prod5"),
         "device_id: Value error, invalid 32-byte hex value '0x05': expected 32 bytes"),
        ("/api/nodes/prod5", NODE, lambda p: p.node("prod5"), "history: Field required"),
        ("/api/apps/demo", {"app": "0xzz", "name": None, "chain_id": 1, "kms": None}, lambda p: p.app("demo"),
         "app: Value error, invalid address '0xzz'"),
        ("/api/apps/demo/history", {"app": APP, "events": [{"block": "soon"}]}, lambda p: p.app_history("demo"),
         "events.0.block: Input should be a valid integer"),
        ("/api/cvms", {"cvms": [CVM | {"status": 3}]}, lambda p: p.cvms(),
         "cvms.0.status: Input should be a valid string"),
        ("/api/cvms", {"cvms": {"demo-1": CVM}}, lambda p: p.cvms(), "cvms: Input should be a valid list"),
    ],
)  # fmt: skip
def test_a_malformed_answer_is_a_clear_failure_naming_the_field(
    world: PlaneWorld, path: str, body: Any, call: Any, problem: str
) -> None:
    with (
        serve(fake_plane({path: body})) as url,
        ControlPlaneClient(url, world.token) as plane,
        pytest.raises(OperationFailed) as failed,
    ):
        call(plane)
    message = str(failed.value)
    assert (
        message.startswith(f"the control plane at {url} answered ")
        and f" {path} with something warden cannot read as a " in message
    )
    assert problem in message and "WARDEN_API_URL" in message
    assert failed.value.exit_code == 1 and world.token not in message


def test_fields_a_newer_server_adds_are_passed_on(world: PlaneWorld) -> None:
    newer = {"/api/cvms/demo-1": CVM | {"zone": "b"}, "/api/nodes": {"nodes": [NODE], "total": 1}}
    with serve(fake_plane(newer)) as url, ControlPlaneClient(url, world.token) as plane:
        assert plane.cvm("demo-1") == CVM | {"zone": "b"}
        assert plane.nodes() == [NODE]


def test_list_methods_follow_every_page_unless_given_a_limit(world: PlaneWorld, base_url: str) -> None:
    """250 nodes and CVMs at 100 a page: all of them, each once, in order; `limit` asks for one page."""
    names = [f"node-{i:03d}" for i in range(250)]
    for name in names:
        world.fleet.add_node(name)
        world.fleet.grant(world.workspace, name)
    world.fleet.register_app(world.workspace, APP, chain_id=31337, name="demo")
    for name in names:
        world.fleet.add_cvm(world.workspace, "cvm-" + name, app="demo", node=name)
    pages: list[str] = []

    def count(request: httpx.Request) -> None:
        pages.append(request.url.params.get("cursor") or "first")

    with ControlPlaneClient(base_url, world.token, page_size=100) as plane:
        plane._http.event_hooks["request"] = [count]
        assert [n["name"] for n in plane.nodes()] == sorted(["prod5", *names])
        assert len(pages) == 3 and len(set(pages)) == 3
        assert [c["name"] for c in plane.cvms("demo")] == ["cvm-" + n for n in names]
        assert [c["name"] for c in plane.cvms()] == ["cvm-" + n for n in names]
        assert [n["name"] for n in plane.nodes(limit=2)] == ["node-000", "node-001"]
        assert [c["name"] for c in plane.cvms(limit=1)] == ["cvm-node-000"]
        assert [a["name"] for a in plane.apps(limit=1)] == [a["name"] for a in plane.apps()] == ["demo"]
        with pytest.raises(BadInput, match="invalid limit 0"):
            plane.nodes(limit=0)
        with pytest.raises(BadInput, match="invalid limit 1001: expected 1 to 1,000 items per page"):
            plane.nodes(limit=1001)  # the server's own words


def test_a_server_that_hands_out_the_same_cursor_again_is_a_failure_not_a_loop(world: PlaneWorld) -> None:
    looping = {"/api/nodes": {"nodes": [NODE], "next_cursor": "cHJvZDU"}}
    with serve(fake_plane(looping)) as url, ControlPlaneClient(url, world.token) as plane:
        with pytest.raises(OperationFailed, match="kept answering GET /api/nodes with the same page"):
            plane.nodes()
        assert plane.nodes(limit=5) == [NODE]
