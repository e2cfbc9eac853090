"""A control plane in a test: an inventory database (SQLite file or a fresh PostgreSQL database), a
workspace with its token, the app deployed on anvil, served over real HTTP when asked.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); each use gets its own database, dropped after.
Set WARDEN_TEST_POSTGRES_URL to use another server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from tests.support.http_server import serve
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.signer import Signer
from warden.fleet.store import Fleet, WorkspaceRef
from warden.fleet.workspace_signers import SecretKey, assign_signer
from warden.web.app import create_control_plane_app
from warden.web.plane import ControlPlane

POSTGRES_ADMIN_URL = os.environ.get("WARDEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASES = ("sqlite", "postgresql")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; its URL (dropped afterwards)."""
    name = f"warden_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}); the inventory tests need it"
        ) from exc
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def database_url(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'warden.db'}"
    else:
        with postgres_database() as url:
            yield url


@dataclass
class PlaneWorld:
    plane: ControlPlane
    fleet: Fleet
    workspace: WorkspaceRef
    token: str

    def client(self, base_url: str, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30)


def make_plane(url: str, chain: Chain, cache_dir: Path, *, signer: Signer | None = None, **options: Any) -> PlaneWorld:
    """Workspace acme and a control plane with a secret key; `signer` becomes acme's own signer."""
    fleet = Fleet.open(url)
    workspace, token = fleet.create_workspace("acme")
    secret = SecretKey(secrets.token_bytes(32), "test")
    if signer is not None:
        assign_signer(fleet, secret, workspace, signer)
    plane = ControlPlane(fleet, [chain.rpc.url], secret_key=secret, cache_dir=cache_dir, **options)
    return PlaneWorld(plane, fleet, workspace, token)


@contextmanager
def plane_world(kind: str, directory: Path, chain: Chain, **options: Any) -> Iterator[PlaneWorld]:
    """A control plane over a fresh `kind` database ("sqlite" or "postgresql"), closed (and dropped) after."""
    with database_url(kind, directory) as url:
        world = make_plane(url, chain, directory / "cache", **options)
        try:
            yield world
        finally:
            world.plane.close()


def add_node(
    world: PlaneWorld, name: str, device_id: bytes, *, region: str = "us-east", ppid: bytes | None = None
) -> None:
    """A node the workspace may deploy to, with a known device id (as if it had posted a quote)."""
    world.fleet.add_node(name, region=region)
    world.fleet.grant(world.workspace, name)
    world.fleet.record_identity(name, ppid or device_id[:16], device_id)


def register(world: PlaneWorld, app: AppAuth, name: str = "shared-key-demo") -> None:
    world.fleet.register_app(world.workspace, app.address, chain_id=app.chain.chain_id, name=name)


@contextmanager
def served(world: PlaneWorld) -> Iterator[str]:
    with serve(create_control_plane_app(world.plane)) as base_url:
        yield base_url
