"""Fixtures: one real anvil for the whole session, fresh contracts for every test that asks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import is_hypothesis_test

from tests.support.chain import STRANGER_KEY, THIRD_KEY
from tests.support.control_plane import DATABASES, database_url
from tests.support.processes import free_port
from warden.chain.connection import Chain
from warden.chain.deploy import KmsDeployment, deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, signer_from_key
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil, install_multicall, start_anvil
from warden.fleet.store import Fleet


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def chain(anvil: Anvil) -> Iterator[Chain]:
    connection = Chain.connect(anvil.url)
    install_multicall(connection)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def owner() -> Signer:
    """The deployer and owner of every contract the fixtures create (anvil key #0)."""
    return signer_from_key(DEV_PRIVATE_KEY, "test")


@pytest.fixture(scope="session")
def stranger() -> Signer:
    """A funded account that owns nothing (anvil key #1)."""
    return signer_from_key(STRANGER_KEY, "test")


@pytest.fixture(scope="session")
def third() -> Signer:
    """Another funded account (anvil key #2), e.g. a new owner."""
    return signer_from_key(THIRD_KEY, "test")


@pytest.fixture
def kms_deployment(chain: Chain, owner: Signer) -> KmsDeployment:
    return deploy_kms(chain, owner)


@pytest.fixture
def kms(chain: Chain, kms_deployment: KmsDeployment) -> KmsRegistry:
    return KmsRegistry.open(chain, kms_deployment.kms)


@pytest.fixture(params=DATABASES)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """An empty inventory, once on a SQLite file and once on the PostgreSQL at 127.0.0.1:5432."""
    with database_url(request.param, tmp_path) as url:
        opened = Fleet.open(url)
        try:
            yield opened
        finally:
            opened.close()


@pytest.fixture
def dead_url() -> str:
    """A URL on a 127.0.0.1 port nothing listens on (bound once, then closed)."""
    return f"http://127.0.0.1:{free_port()}"


def pytest_configure(config: pytest.Config) -> None:
    """The user's config file and cache dir are never read or written by the tests: both point into a
    directory of this run (subprocesses inherit it); a developer's WARDEN_PROFILE is not applied."""
    base = Path(tempfile.mkdtemp(prefix="warden-tests-"))
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    for name in ("WARDEN_PROFILE", "WARDEN_CONFIG"):
        os.environ.pop(name, None)


TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fuzz (hypothesis), browser (Playwright) and end-to-end tests are `slow`, so `pytest -m "not slow"`
    is a quick loop; the whole run (`make test`, CI) still runs every test."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


def _is_slow(item: pytest.Item) -> bool:
    if item.path.is_relative_to(TESTS / "e2e"):
        return True
    if isinstance(item, pytest.Function) and is_hypothesis_test(item.obj):
        return True
    module = item.module if isinstance(item, pytest.Function) else None
    return item.path.is_relative_to(TESTS / "web") and module is not None and _uses_playwright(module)


def _uses_playwright(module: ModuleType) -> bool:
    """Whether a test module imported anything from Playwright (its browser tests drive chromium)."""
    return any(str(getattr(value, "__module__", "")).startswith("playwright") for value in vars(module).values())
