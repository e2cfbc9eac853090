"""API list pages at fleet scale: one page of `GET /api/nodes` / `GET /api/cvms` (limit 100) beside fetching
every item (the old behaviour, which answered the whole list: here every page of 1,000, following
`next_cursor`), both as raw HTTP requests, measured in the same run. Target: a list page <= 50 ms p50.

Setup: an inventory (SQLite) with 2,000 nodes the workspace may deploy to (each with one device identity),
one app and 5,000 CVMs spread over the nodes, served over real HTTP on 127.0.0.1 with the workspace token.

Run: .venv/bin/python -m bench.bench_api_pages
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from tests.support.http_server import serve

from bench.common import BenchResult, p50_ms
from warden.fleet import models as m
from warden.fleet.store import Fleet
from warden.web.app import create_control_plane_app
from warden.web.client import ControlPlaneClient
from warden.web.plane import ControlPlane

NODES, CVMS = 2_000, 5_000
PAGE = 100
TARGET_MS = 50.0
APP = "0x" + "12" * 20


def device(i: int) -> bytes:
    return hashlib.sha256(f"bench node {i}".encode()).digest()


def seed(fleet: Fleet, app: str = APP, chain_id: int = 31337) -> str:
    """The fleet in a few transactions (the store's one-at-a-time writes would take minutes), its CVMs all of
    `app`; the token. Node i has device id `device(i)`."""
    workspace, token = fleet.create_workspace("bench")
    fleet.register_app(workspace, app, chain_id=chain_id, name="bench-app")
    with fleet.session() as s:
        nodes = []
        for i in range(NODES):
            node = m.Node(name=f"node-{i:04d}", region=("us-east", "eu-west", "ap-south")[i % 3], ppid=device(i)[:16],
                          device_id=device(i), status="online", last_attested_at=1, created_at=1)  # fmt: skip
            node.identities.append(
                m.NodeIdentity(old_device_id=None, device_id=device(i), ppid=device(i)[:16], first_seen=1, last_seen=1)
            )
            nodes.append(node)
        s.add_all(nodes)
        s.flush()
        s.add_all(m.NodeAccess(workspace_id=workspace.id, node_id=n.id) for n in nodes)
        app_id = s.scalars(select(m.App.id).where(m.App.workspace_id == workspace.id)).one()
        s.add_all(
            m.Cvm(workspace_id=workspace.id, app_id=app_id, node_id=nodes[i % NODES].id, name=f"cvm-{i:04d}",
                  uuid=str(uuid.uuid4()), compose_hash=device(i), status="running", created_at=1, updated_at=1)
            for i in range(CVMS)
        )  # fmt: skip
    return token


def every_item(http: httpx.Client, path: str, field: str) -> list[Any]:
    """The whole list, page after page of the largest size."""
    items: list[Any] = []
    params: dict[str, str | int] = {"limit": 1_000}
    while True:
        body = http.get(path, params=params).raise_for_status().json()
        items += body[field]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]


def one_page(http: httpx.Client, path: str, field: str) -> list[Any]:
    items: list[Any] = http.get(path, params={"limit": PAGE}).raise_for_status().json()[field]
    return items


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet.open(f"sqlite:///{Path(tmp) / 'warden.db'}")
        token = seed(fleet)
        plane = ControlPlane(fleet, [], cache_dir=Path(tmp) / "cache")
        results = []
        with (
            serve(create_control_plane_app(plane)) as base_url,
            ControlPlaneClient(base_url, token) as client,
            httpx.Client(base_url=base_url + "/api", headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        ):
            assert len(client.nodes()) == NODES and len(client.cvms()) == CVMS  # and each answer fits its model
            for what, count in (("nodes", NODES), ("cvms", CVMS)):
                assert len(one_page(http, f"/{what}", what)) == PAGE
                assert len(every_item(http, f"/{what}", what)) == count
                page = p50_ms(lambda: one_page(http, f"/{what}", what))  # noqa: B023 (called in this iteration)
                whole = p50_ms(lambda: every_item(http, f"/{what}", what))  # noqa: B023
                verdict = "meets" if page <= TARGET_MS else "MISSES"
                results.append(
                    BenchResult(
                        f"GET /api/{what}?limit={PAGE}, {count:,} {what} (p50)",
                        page,
                        whole,
                        f"every {what[:-1]} (all pages of 1,000)",
                        unit="ms",
                        note=f"{verdict} the {TARGET_MS:.0f} ms target; round trip over HTTP incl.",
                    )
                )
        plane.close()
        return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
