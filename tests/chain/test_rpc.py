"""RpcClient and Chain.connect against anvil, through a real proxy that injects HTTP faults."""

from __future__ import annotations

import logging

import pytest

from tests.support.flaky_proxy import Action, FlakyProxy
from warden.chain.connection import Chain
from warden.chain.rpc import RpcClient, RpcError, RpcUnavailable
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil
from warden.errors import BadInput

ANVIL_CHAIN_ID = "0x7a69"  # 31337


def fast_client(*urls: str, retries: int = 4, timeout: float = 2.0) -> RpcClient:
    return RpcClient(list(urls), timeout=timeout, retries=retries, backoff=0.01, max_backoff=0.05)


# -- retries -----------------------------------------------------------------------------------------


def test_http_errors_are_retried_until_the_node_answers(flaky: FlakyProxy, owner: Signer) -> None:
    flaky.script("429", "500", "502")
    with fast_client(flaky.url) as rpc:
        balance = rpc.call("eth_getBalance", [owner.address, "latest"])
        assert rpc.stats.retries == 3
        assert rpc.stats.requests == 4
    with fast_client(flaky.url) as direct:
        assert balance == direct.call("eth_getBalance", [owner.address, "latest"])
    assert flaky.faults() == ["429", "500", "502", "pass", "pass"]


@pytest.mark.parametrize("fault", ["drop", "503"])
def test_a_dropped_connection_or_503_is_retried(flaky: FlakyProxy, fault: Action) -> None:
    flaky.script(fault)
    with fast_client(flaky.url) as rpc:
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.stats.retries == 1
    assert flaky.faults() == [fault, "pass"]


def test_a_hanging_node_times_out_and_the_call_is_retried(anvil: Anvil) -> None:
    with FlakyProxy(anvil.url, hang_seconds=5.0) as proxy:
        proxy.script("hang")
        with fast_client(proxy.url, timeout=0.3) as rpc:
            assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
            assert rpc.stats.retries == 1
        assert proxy.faults() == ["hang", "pass"]


def test_retries_give_up_with_the_last_problem_named(flaky: FlakyProxy) -> None:
    flaky.script("500", "500", "500")
    with fast_client(flaky.url, retries=2) as rpc, pytest.raises(RpcUnavailable) as caught:
        rpc.call("eth_chainId")
    message = str(caught.value)
    assert "eth_chainId" in message
    assert "HTTP 500" in message
    assert "after 3 attempts" in message
    assert caught.value.exit_code == 1
    assert flaky.faults() == ["500", "500", "500"]


def test_a_timeout_that_never_ends_is_reported_as_a_timeout(anvil: Anvil) -> None:
    with FlakyProxy(anvil.url, default="hang") as proxy:
        with fast_client(proxy.url, retries=0, timeout=0.3) as rpc, pytest.raises(RpcUnavailable) as caught:
            rpc.call("eth_blockNumber")
        assert "timed out after 0.3s" in str(caught.value)
        assert proxy.faults() == ["hang"]


# -- failover ----------------------------------------------------------------------------------------


def test_failover_from_a_closed_port_to_the_next_url(dead_url: str, anvil: Anvil) -> None:
    with RpcClient(f"{dead_url}, {anvil.url}", retries=2, backoff=0.01) as rpc:
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.stats.failovers == 1
        assert rpc.url == anvil.url
        # the client stays on the endpoint that answered
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.stats.retries == 1
        assert rpc.stats.requests == 3


def test_failover_from_an_endpoint_that_always_fails(anvil: Anvil, flaky: FlakyProxy) -> None:
    with FlakyProxy(anvil.url, default="500") as broken, fast_client(broken.url, flaky.url) as rpc:
        assert rpc.call("eth_chainId") == ANVIL_CHAIN_ID
        assert rpc.stats.failovers == 1
        assert broken.faults() == ["500"]
        assert flaky.faults() == ["pass"]


def test_all_endpoints_down_names_the_problem_but_not_the_api_keys(dead_url: str, anvil: Anvil) -> None:
    with FlakyProxy(anvil.url, default="500") as broken:
        urls = [f"{dead_url}/v2/SECRETKEY1", f"{broken.url}/rpc?apikey=SECRETKEY2"]
        with fast_client(*urls, retries=3) as rpc, pytest.raises(RpcUnavailable) as caught:
            rpc.call("eth_chainId")
        assert broken.faults() == ["500", "500"]
    message = str(caught.value)
    assert "RPC unavailable (HTTP 500) after 4 attempts" in message
    assert f"tried {dead_url}, {broken.url}" in message
    assert "SECRETKEY" not in message
    assert "/v2" not in message
    assert "apikey" not in message


def test_closed_port_is_reported_as_cannot_connect(dead_url: str) -> None:
    with fast_client(f"{dead_url}/key/SECRETKEY", retries=1) as rpc, pytest.raises(RpcUnavailable) as caught:
        rpc.call("eth_chainId")
    assert "cannot connect" in str(caught.value)
    assert dead_url in str(caught.value)
    assert "SECRETKEY" not in str(caught.value)


# -- JSON-RPC errors and batches -----------------------------------------------------------------------


def test_a_json_rpc_error_is_the_nodes_verdict_and_is_not_retried(flaky: FlakyProxy) -> None:
    with fast_client(flaky.url) as rpc, pytest.raises(RpcError) as caught:
        rpc.call("warden_noSuchMethod", [1])
    assert caught.value.code == -32601
    assert caught.value.rpc_message == "Method not found"
    assert str(caught.value) == "warden_noSuchMethod: Method not found"
    assert caught.value.exit_code == 1
    assert [r.methods for r in flaky.records] == [("warden_noSuchMethod",)]


def test_batch_returns_each_result_or_error_in_order(flaky: FlakyProxy, owner: Signer) -> None:
    flaky.script("502")  # the whole batch is retried as one request
    with fast_client(flaky.url) as rpc:
        direct_balance = rpc.call("eth_getBalance", [owner.address, "latest"])
        chain_id, missing, balance = rpc.batch(
            [("eth_chainId", []), ("warden_noSuchMethod", []), ("eth_getBalance", [owner.address, "latest"])]
        )
        assert rpc.batch([]) == []
    assert chain_id == ANVIL_CHAIN_ID
    assert isinstance(missing, RpcError)
    assert missing.code == -32601
    assert balance == direct_balance
    batch_methods = ("eth_chainId", "warden_noSuchMethod", "eth_getBalance")
    assert [(r.methods, r.fault) for r in flaky.records] == [
        (("eth_getBalance",), "502"),
        (("eth_getBalance",), "pass"),
        (batch_methods, "pass"),
    ]


# -- URLs and connecting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ftp://x", "not a url", "", " , ", "http://", "http://127.0.0.1:99999", "http://127.0.0.1:port"],
)
def test_malformed_rpc_urls_are_bad_input(url: str) -> None:
    with pytest.raises(BadInput) as caught:
        RpcClient(url)
    assert caught.value.exit_code == 2
    assert ("invalid RPC URL" in str(caught.value)) or ("no RPC URL given" in str(caught.value))


def test_connect_checks_the_chain_id(anvil: Anvil) -> None:
    with pytest.raises(BadInput) as caught:
        Chain.connect(anvil.url, expected_chain_id=8453)
    message = str(caught.value)
    assert "wrong chain" in message
    assert "anvil (31337)" in message
    assert "base (8453)" in message
    assert caught.value.exit_code == 2

    connected = Chain.connect(anvil.url, expected_chain_id=31337)
    try:
        assert connected.chain_id == 31337
    finally:
        connected.close()


def test_connect_to_an_unreachable_rpc_fails_with_exit_code_1(dead_url: str) -> None:
    with pytest.raises(RpcUnavailable) as caught:
        Chain.connect(dead_url, retries=0)
    assert caught.value.exit_code == 1
    assert f"eth_chainId: RPC unavailable (cannot connect (ConnectError)) after 1 attempts; tried {dead_url}" == str(
        caught.value
    )


def test_http_request_logs_never_show_the_rpc_path(anvil: Anvil, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_url = anvil.url + "/?apikey=SECRET-API-KEY"
    client = RpcClient(secret_url)
    try:
        client.call("eth_chainId")
    finally:
        client.close()
    assert "SECRET-API-KEY" not in caplog.text
    assert "127.0.0.1" in caplog.text  # the request is still logged, with scheme, host and port
