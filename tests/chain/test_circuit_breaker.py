"""The RPC circuit breaker: a refused port opens it, calls then fail without touching the network, a
background probe closes it when a node listens on that port again; slow nodes never open it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.flaky_proxy import FlakyProxy
from tests.support.processes import port_of, wait_until
from warden.chain.circuit_breaker import CircuitBreaker, ProbeSchedule
from warden.chain.connection import Chain
from warden.chain.rpc import RpcClient, RpcRefused, RpcUnavailable
from warden.devnet.anvil import Anvil

ANVIL_CHAIN_ID = "0x7a69"
SECRET = "S3CRET-api-key-0123456789"
QUICK = ProbeSchedule(first_delay=0.01, max_delay=0.05, timeout=0.5)


@pytest.fixture
def failing_fast(dead_url: str) -> Iterator[RpcClient]:
    """A service's client (5 attempts for other faults) pointed at a port where nothing listens."""
    with RpcClient(f"{dead_url}/v2/{SECRET}", retries=4, backoff=0.01, fail_fast=True, probe_schedule=QUICK) as rpc:
        yield rpc


def test_a_refused_port_opens_the_breaker_and_later_calls_never_reach_the_network(failing_fast: RpcClient) -> None:
    with pytest.raises(RpcRefused, match=r"eth_chainId: RPC unavailable \(cannot connect \(ConnectError\)\)"):
        failing_fast.call("eth_chainId")
    assert failing_fast.stats.requests == 1  # no retries against a refused port
    assert failing_fast.breaker is not None and failing_fast.breaker.state == "open"
    for _ in range(20):
        with pytest.raises(RpcRefused, match="re-probing in the background") as caught:
            failing_fast.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        assert caught.value.exit_code == 1 and SECRET not in str(caught.value)
    assert failing_fast.stats.requests == 1  # twenty calls, not one connection attempt
    assert failing_fast.stats.fast_failures == 20


def test_the_breaker_closes_by_itself_when_a_node_listens_again(
    failing_fast: RpcClient, dead_url: str, anvil: Anvil, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="warden"):
        with pytest.raises(RpcRefused):
            failing_fast.call("eth_chainId")
        for _ in range(5):
            with pytest.raises(RpcRefused):
                failing_fast.call("eth_blockNumber")
        with FlakyProxy(anvil.url, port=port_of(dead_url)) as revived:
            breaker = failing_fast.breaker
            assert breaker is not None
            wait_until(lambda: breaker.state == "closed")
            assert revived.requests_for("eth_chainId")  # the probe is what noticed
            assert failing_fast.call("eth_chainId") == ANVIL_CHAIN_ID
    opened = [r for r in caplog.records if "refuses connections" in r.getMessage()]
    closed = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert len(opened) == 1 and opened[0].levelno == logging.WARNING  # once per outage, not per call
    assert len(closed) == 1 and "5 calls failed at once" in closed[0].getMessage()
    assert not any(SECRET in r.getMessage() or "/v2" in r.getMessage() for r in caplog.records)


def test_a_second_outage_opens_it_again(failing_fast: RpcClient, dead_url: str, anvil: Anvil) -> None:
    breaker = failing_fast.breaker
    assert breaker is not None
    for _ in range(2):
        with pytest.raises(RpcRefused):
            failing_fast.call("eth_chainId")
        with FlakyProxy(anvil.url, port=port_of(dead_url)):
            wait_until(lambda: breaker.state == "closed")
            assert failing_fast.call("eth_chainId") == ANVIL_CHAIN_ID
    assert breaker.outages == 2


def test_a_slow_node_is_not_a_refusal_and_keeps_its_timeout_and_retries(anvil: Anvil) -> None:
    with FlakyProxy(anvil.url, default="hang", hang_seconds=2.0) as slow:
        with RpcClient(slow.url, timeout=0.2, retries=1, backoff=0.01, fail_fast=True) as rpc:
            with pytest.raises(RpcUnavailable, match=r"timed out after 0\.2s") as caught:
                rpc.call("eth_chainId")
            assert not isinstance(caught.value, RpcRefused)
            assert rpc.breaker is not None and rpc.breaker.state == "closed"
            assert slow.faults() == ["hang", "hang"]  # the retry is kept for a one-off timeout
        with (
            RpcClient(slow.url, timeout=0.2, retries=4, fail_fast=True, retry_timeouts=False) as service,
            pytest.raises(RpcUnavailable, match=r"timed out after 0\.2s\) after 1 attempts"),
        ):
            service.call("eth_chainId")
        assert len(slow.faults()) == 3  # a caller whose deadline is the timeout gets no second attempt


def test_http_errors_do_not_open_it(anvil: Anvil) -> None:
    with FlakyProxy(anvil.url) as flaky, RpcClient(flaky.url, retries=2, backoff=0.01, fail_fast=True) as rpc:
        flaky.script("503", "500")
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.breaker is not None and rpc.breaker.state == "closed"


def test_a_refused_endpoint_fails_over_at_once_without_opening(dead_url: str, anvil: Anvil) -> None:
    slept: list[float] = []
    with RpcClient(f"{dead_url}, {anvil.url}", fail_fast=True, sleep=slept.append) as rpc:
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.url == anvil.url and rpc.stats.failovers == 1
        assert rpc.breaker is not None and rpc.breaker.state == "closed"
    assert slept == []  # a refusal is not worth a backoff when another endpoint may answer


def test_one_shot_clients_keep_retrying_a_refused_port(dead_url: str) -> None:
    """The CLI's client has no breaker: a node that is restarting gets its retries, as before."""
    slept: list[float] = []
    with RpcClient(dead_url, retries=2, sleep=slept.append) as rpc, pytest.raises(RpcUnavailable) as caught:
        rpc.call("eth_chainId")
    assert rpc.breaker is None and not isinstance(caught.value, RpcRefused)
    assert rpc.stats.requests == 3 and len(slept) == 2
    assert "cannot connect" in str(caught.value) and "after 3 attempts" in str(caught.value)


def test_chain_connect_can_fail_fast(dead_url: str) -> None:
    with pytest.raises(RpcRefused) as caught:
        Chain.connect(dead_url, fail_fast=True)
    assert caught.value.exit_code == 1


# -- the breaker on its own ---------------------------------------------------------------------------


def test_probes_back_off_until_one_answers_and_a_raising_probe_is_a_failed_one() -> None:
    answers: Iterator[bool | Exception] = iter([False, RuntimeError("boom"), False, True])
    done = threading.Event()

    def probe() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        if answer:
            done.set()
        return answer

    breaker = CircuitBreaker(probe, schedule=QUICK)
    assert breaker.allow() and breaker.state == "closed"
    breaker.trip("cannot connect (ConnectError)")
    breaker.trip("again")  # already open: no second outage, no second thread
    assert not breaker.allow() and breaker.cause == "cannot connect (ConnectError)"
    assert done.wait(10)
    wait_until(lambda: breaker.state == "closed")
    assert (breaker.outages, breaker.probes, breaker.fast_failures) == (1, 4, 1)
    assert breaker.open_for() == 0.0


def test_stop_ends_the_probe_thread() -> None:
    breaker = CircuitBreaker(lambda: False, schedule=QUICK)
    breaker.trip("cannot connect (ConnectError)")
    breaker.stop()
    probes = breaker.probes
    time.sleep(0.1)
    assert breaker.probes == probes and breaker.state == "open"
