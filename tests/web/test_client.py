"""`ControlPlaneClient` against a control plane served over real HTTP: answers, and errors users can act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.control_plane import PlaneWorld, add_node, plane_world, served
from tests.support.http_server import serve
from warden.chain.connection import Chain
from warden.errors import BadInput, OperationFailed
from warden.web.client import ControlPlaneClient

PROD5 = bytes([5]) * 32
APP = "0x" + "12" * 20


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
            plane._object("POST", "/apps", json={"chain_id": 1})  # FastAPI's validation list, as one line
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
