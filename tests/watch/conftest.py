"""A control plane (SQLite, or PostgreSQL where a test asks) with an alert store whose clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.control_plane import PlaneWorld, plane_world
from warden.chain.connection import Chain
from warden.watch.delivery import Backoff, Deliverer
from warden.watch.store import AlertStore
from warden.watch.watcher import Watcher


@dataclass
class Clock:
    """Unix seconds that move only when the test says so (retries become due without waiting)."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Watching:
    world: PlaneWorld
    clock: Clock
    store: AlertStore
    deliverer: Deliverer
    watcher: Watcher


def watching(world: PlaneWorld, *, timeout: float = 0.3, max_attempts: int = 4) -> Watching:
    clock = Clock(time.time())
    store = AlertStore(world.fleet, clock=clock)
    deliverer = Deliverer(store, timeout=timeout, backoff=Backoff(first_seconds=10, max_attempts=max_attempts))
    watcher = Watcher(world.fleet, world.plane, store, deliverer, out_of_band_grace_seconds=0)
    return Watching(world, clock, store, deliverer, watcher)


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> Iterator[PlaneWorld]:
    with plane_world("sqlite", tmp_path, chain) as built:
        yield built


@pytest.fixture
def w(world: PlaneWorld) -> Iterator[Watching]:
    made = watching(world)
    try:
        yield made
    finally:
        made.deliverer.close()
