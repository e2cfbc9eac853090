from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import isolate
from tests.support.control_plane import PlaneWorld, plane_world, served
from warden.chain.connection import Chain


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited configuration and no devnet: each CLI test says exactly what it uses."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture
def user_cache(tmp_path: Path, isolated_env: Path) -> Path:
    """warden's directory in this test's user cache dir (XDG_CACHE_HOME)."""
    return tmp_path / "user-cache" / "warden"


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> Iterator[PlaneWorld]:
    """A control plane on a SQLite file with one workspace (tests add nodes, apps and CVMs)."""
    with plane_world("sqlite", tmp_path, chain) as built:
        yield built


@pytest.fixture
def api(world: PlaneWorld) -> Iterator[str]:
    """That control plane served over HTTP on 127.0.0.1: its base URL."""
    with served(world) as url:
        yield url
