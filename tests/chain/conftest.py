"""Fixtures for the chain client tests: a fault-injecting proxy in front of the session anvil."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flaky_proxy import FlakyProxy
from warden.chain.connection import Chain
from warden.chain.rpc import RpcClient
from warden.devnet.anvil import Anvil


@pytest.fixture
def flaky(anvil: Anvil) -> Iterator[FlakyProxy]:
    """A proxy to the session anvil that passes everything until a test scripts faults."""
    with FlakyProxy(anvil.url) as proxy:
        yield proxy


@pytest.fixture
def flaky_chain(flaky: FlakyProxy, chain: Chain) -> Iterator[Chain]:
    """A connection through `flaky` with quick retries (3 attempts, 10 ms backoff)."""
    rpc = RpcClient(flaky.url, timeout=2.0, retries=2, backoff=0.01)
    try:
        yield Chain(rpc, chain.chain_id)
    finally:
        rpc.close()
