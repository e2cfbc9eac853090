"""The control plane's view of the chain: scanned logs, block times and provider limits cached in its own
database (SQLite and PostgreSQL), the allowlist reused while the head has not moved, the block it reflects,
and the allowlist and history pages of the API, through a counting JSON-RPC proxy in front of anvil.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.chain import deploy_app, send
from tests.support.control_plane import DATABASES, PlaneWorld, add_node, database_url, make_plane, register, served
from tests.support.dashboard import sign_in
from tests.support.limited_rpc import LimitedRpc
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import REORG_DEPTH
from warden.chain.signer import Signer
from warden.fleet.store import Fleet
from warden.web.client import ControlPlaneClient
from warden.web.plane import ControlPlane

CHAIN_READS = ("eth_getLogs", "eth_call", "eth_getCode", "eth_getBlockByNumber")


@pytest.fixture
def proxy(chain: Chain) -> Iterator[LimitedRpc]:
    with LimitedRpc(chain.rpc.url) as counting:
        yield counting


@pytest.fixture
def proxied(proxy: LimitedRpc) -> Iterator[Chain]:
    """The shared anvil, reached through the counting proxy."""
    connection = Chain.connect(proxy.url)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def world(db_url: str, proxied: Chain, tmp_path: Path) -> Iterator[PlaneWorld]:
    built = make_plane(db_url, proxied, tmp_path / "cache")
    try:
        yield built
    finally:
        built.plane.close()


def devices(count: int) -> list[bytes]:
    return [secrets.token_bytes(32) for _ in range(count)]


def allowing(chain: Chain, owner: Signer, kms: KmsRegistry, ids: list[bytes]) -> AppAuth:
    app = deploy_app(chain, owner, kms, device_id=ids[0])
    for device in ids[1:]:
        send(chain, owner, app.add_device(device))
    return app


def reads(proxy: LimitedRpc) -> dict[str, int]:
    return {method: proxy.calls[method] for method in CHAIN_READS if proxy.calls[method]}


def test_a_second_control_plane_reads_the_history_from_the_database(
    world: PlaneWorld, db_url: str, proxy: LimitedRpc, proxied: Chain, chain: Chain, owner: Signer,
    kms: KmsRegistry,
) -> None:  # fmt: skip
    """No cache dir: what one control plane scanned (logs, block times) another over the same database reuses,
    e.g. after a restart or as another worker."""
    ids = devices(3)
    app = allowing(chain, owner, kms, ids)
    chain.rpc.call("anvil_mine", [hex(REORG_DEPTH + 6)])  # the app's events are below reorg depth: cacheable
    register(world, app)
    proxy.reset_counts()
    first = world.plane.device_allowlist(world.workspace, app.address)
    history = world.plane.app_history(world.workspace, app.address)
    cold = reads(proxy)
    assert {r.device_id for r in first.rows if r.allowed} == set(ids)
    assert cold["eth_getCode"] > 0 and cold["eth_getBlockByNumber"] > 0  # creation block found, times fetched

    other = ControlPlane(Fleet.open(db_url), [proxied.rpc.url])
    try:
        proxy.reset_counts()
        again = other.device_allowlist(world.workspace, app.address)
        assert other.app_history(world.workspace, app.address) == history
        warm, asked = reads(proxy), set(proxy.blocks_asked)
    finally:
        other.close()
    assert [r.as_json() for r in again.rows] == [r.as_json() for r in first.rows]
    assert warm.get("eth_getCode", 0) == 0  # the creation block is not searched again
    assert warm["eth_getLogs"] <= cold["eth_getLogs"]  # only the blocks after the cached ones
    assert sum(warm.values()) < sum(cold.values())
    assert not asked & {e["block"] for e in history}  # the events' timestamps come from the database
    assert not (world.plane.cache_dir or Path("/nonexistent")).joinpath("logs.sqlite").exists()


def test_the_view_is_reused_while_the_head_has_not_moved_and_shows_its_block(
    world: PlaneWorld, proxy: LimitedRpc, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    ids = devices(4)
    app = allowing(chain, owner, kms, ids[:3])
    add_node(world, "prod5", ids[0])
    register(world, app)
    first = world.plane.device_allowlist(world.workspace, app.address)
    assert first.block == chain.block_number()

    proxy.reset_counts()
    second = world.plane.device_allowlist(world.workspace, app.address)
    assert dict(proxy.calls) == {"eth_blockNumber": 1}  # no log, no membership check, no row re-read
    assert second.block == first.block and [r.as_json() for r in second.rows] == [r.as_json() for r in first.rows]

    add_node(world, "prod6", ids[1])  # the inventory's part is read fresh every time
    assert {r.node for r in world.plane.device_allowlist(world.workspace, app.address).rows} >= {"prod5", "prod6"}

    send(chain, owner, app.add_device(ids[3]))  # a new block: the chain is read again
    proxy.reset_counts()
    third = world.plane.device_allowlist(world.workspace, app.address)
    assert third.block == chain.block_number() > first.block
    assert {r.device_id for r in third.rows if r.allowed} == set(ids)
    assert proxy.calls["eth_call"] + proxy.calls["eth_getLogs"] > 0

    with served(world) as base_url:
        body = world.client(base_url).get(f"/api/apps/{app.address}/device-allowlist").json()
        assert body["block"] == third.block
        with sign_in(base_url, world.token) as browser:
            page = browser.get(f"/apps/{app.address}").text
    assert f"as of block {third.block}" in page


def _walk(api: httpx.Client, path: str, field: str, limit: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Every item, following `next_cursor`; and the size of each page."""
    items: list[dict[str, Any]] = []
    sizes: list[int] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        answer = api.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body[field]
        sizes.append(len(body[field]))
        if body["next_cursor"] is None:
            return items, sizes
        params["cursor"] = body["next_cursor"]


def test_allowlist_and_history_pages_hold_every_item_exactly_once(
    world: PlaneWorld, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    ids = devices(5)
    app = allowing(chain, owner, kms, ids[:3])
    send(chain, owner, app.remove_device(ids[2]))
    register(world, app)
    for i, device in enumerate(ids):  # 5 deployable nodes, one running a CVM while not allowed
        add_node(world, f"node-{i}", device)
    world.fleet.add_cvm(world.workspace, "cvm-4", app=app.address, node="node-4", status="running")
    whole = world.plane.device_allowlist(world.workspace, app.address).as_json()
    events = world.plane.app_history(world.workspace, app.address)
    assert len(events) == 4 and len(whole["devices"]) == 5

    with served(world) as base_url, world.client(base_url) as api:
        path = f"/api/apps/{app.address}/device-allowlist"
        rows, sizes = _walk(api, path, "devices", 2)
        assert rows == whole["devices"] and sizes == [2, 2, 1]  # the same order, nothing skipped or repeated
        assert rows[0]["status"] == "deployed-not-allowed"  # what needs attention first, on the first page
        first = api.get(path, params={"limit": 2}).json()
        assert first["warning"] is True and first["block"] == whole["block"]  # about every row, on every page
        assert api.get(path).json()["next_cursor"] is None  # the default page (100) holds them all

        history, sizes = _walk(api, f"/api/apps/{app.address}/history", "events", 3)
        assert history == events and sizes == [3, 1]

        for route in (path, f"/api/apps/{app.address}/history"):
            for params, words in (
                ({"limit": 0}, "invalid limit 0: expected 1 to 1,000 items per page"),
                ({"limit": 1001}, "invalid limit 1001"),
                ({"cursor": "not a cursor!"}, "invalid cursor 'not a cursor!'"),
                ({"cursor": "bm9kZQ"}, "invalid cursor"),  # a well-formed cursor this route never wrote
            ):
                answer = api.get(route, params=params)
                assert answer.status_code == 400, (route, params, answer.text)
                assert words in answer.json()["detail"]

        client = ControlPlaneClient(base_url, world.token, page_size=2)
        listed = client.device_allowlist(app.address)
        assert listed["devices"] == whole["devices"] and listed["next_cursor"] is None
        assert len(client.device_allowlist(app.address, limit=2)["devices"]) == 2
        assert client.app_history(app.address) == events
        assert client.app_history(app.address, limit=1) == events[:1]
        client.close()
    assert {r["device_id"] for r in rows} == {hex0x(d) for d in ids}
