"""A control plane with the probe API and devnet CVMs whose guest agents serve dstack's API, all over real HTTP.

Nodes prod5 and prod6 belong to workspace acme; each has a simulated CVM (mock Intel PKI quotes, verified by
dcap-qvl against the devnet root). The nonces' clock is a `Clock` the tests move; quotes verify at real time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.support.http_server import serve
from warden.fleet.probe_nonces import ProbeNonces
from warden.fleet.store import Fleet, WorkspaceRef
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.client import KmsClient
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.guest import Guest
from warden.tee.guest_api import create_guest_app
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki
from warden.web.app import create_control_plane_app
from warden.web.plane import ControlPlane

NODES = ("prod5", "prod6")


@dataclass
class Clock:
    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def control_plane_app(plane: ControlPlane, nonces: ProbeNonces) -> FastAPI:
    """The control plane as `warden serve` builds it, with nonces on an injectable clock."""
    app = create_control_plane_app(plane)
    app.state.probe_nonces = nonces
    return app


@contextmanager
def serve_unix(app: FastAPI, path: Path) -> Iterator[str]:
    """Serve `app` on a unix socket at `path` (as dstack's guest agent listens); yields the path."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the unix-socket server did not start"
            time.sleep(0.005)
        yield str(path)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@dataclass
class ProbeWorld:
    url: str  # the control plane
    token: str
    fleet: Fleet
    workspace: WorkspaceRef
    clock: Clock
    nodes: dict[str, SimNode]
    guests: dict[str, str]  # node → its CVM's guest agent URL
    plane: ControlPlane
    guest_apps: dict[str, FastAPI]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def node_state(self, name: str) -> dict[str, Any]:
        """What the API says about the node (identity history included), to compare before and after."""
        with self.api() as api:
            answer = api.get(f"/api/nodes/{name}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def policy(pki: MockIntelPki) -> AttestationPolicy:
    return AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)


def sim_cvm(directory: Path, name: str, pki: MockIntelPki) -> tuple[SimNode, SimCvm]:
    node = SimNode.load_or_create(directory / name, name, "devnet")
    cvm = SimCvm(node, pki, app_id=b"\x12" * 20, compose_hash=b"\x34" * 32, instance_id=bytes([len(name)]) * 20,
                 os_image_hash=b"\x22" * 32, key_provider=b'{"name":"kms","id":"devnet"}')  # fmt: skip
    return node, cvm


@pytest.fixture
def world(tmp_path: Path, pki: MockIntelPki, policy: AttestationPolicy, dead_url: str) -> Iterator[ProbeWorld]:
    fleet = Fleet.open(f"sqlite:///{tmp_path / 'warden.db'}")
    workspace, token = fleet.create_workspace("acme")
    for name in NODES:
        fleet.add_node(name, region="devnet")
        fleet.grant(workspace, name)
    plane = ControlPlane(fleet, [], attestation=policy)
    clock = Clock()
    with ExitStack() as stack:
        nodes, guests, apps = {}, {}, {}
        for name in NODES:
            node, cvm = sim_cvm(tmp_path / "nodes", name, pki)
            nodes[name] = node
            apps[name] = create_guest_app(Guest(cvm, KmsClient(dead_url), gateway=False))
            guests[name] = stack.enter_context(serve(apps[name]))
        url = stack.enter_context(serve(control_plane_app(plane, ProbeNonces(fleet, clock=clock))))
        yield ProbeWorld(url, token, fleet, workspace, clock, nodes, guests, plane, apps)
    plane.close()
