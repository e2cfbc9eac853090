"""The scanner against provider limits: refused ranges, capped and refused batches, 429s, a pruned node.

A real HTTP proxy (tests/support/limited_rpc.py) sits in front of a private anvil; every scan must return
exactly anvil's own full-range answer: nothing lost, nothing counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.chain import send
from tests.support.limited_rpc import LimitedRpc
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.events import LogScanner
from warden.chain.history import block_times, read_history
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import LogCache
from warden.chain.provider_limits import ProviderLimits, batch_in_message, endpoint_key, range_in_message
from warden.chain.rpc import RpcClient, RpcError
from warden.chain.signer import Signer
from warden.devnet.anvil import install_multicall, start_anvil
from warden.fleet.devices import history_json, list_devices
from warden.fleet.inventory import Inventory

CAP = 40  # the proxy's eth_getLogs range limit (scaled down: anvil_mine slows with height)
GAP = 45
DEVICES = 12


@dataclass(frozen=True)
class Node:
    url: str
    chain: Chain
    app: AppAuth
    created: int
    head: int


@pytest.fixture(scope="module")
def node(owner: Signer) -> Iterator[Node]:
    anvil = start_anvil()
    chain = Chain.connect(anvil.url)
    install_multicall(chain)
    try:
        kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
        chain.rpc.call("anvil_mine", [hex(GAP)])
        created = send(chain, owner, kms.deploy_app(owner.address))
        assert created.receipt is not None and created.block_number is not None
        app = AppAuth.open(chain, kms.app_from_receipt(created.receipt))
        for i in range(DEVICES):
            chain.rpc.call("anvil_mine", [hex(GAP)])
            send(chain, owner, app.add_device(i.to_bytes(32, "big")))
        chain.rpc.call("anvil_mine", [hex(100)])
        yield Node(anvil.url, chain, app, created.block_number, chain.block_number())
    finally:
        chain.close()
        anvil.stop()


def through(proxy: LimitedRpc, node: Node) -> Chain:
    return Chain(RpcClient(proxy.url, backoff=0.001, retries=4), node.chain.chain_id)


def expected_logs(node: Node) -> list[Any]:
    return node.chain.get_logs(node.app.address, 0, node.head)


def scan(chain: Chain, node: Node, **options: Any) -> tuple[list[Any], LogScanner]:
    scanner = LogScanner(chain, node.app.address, fast_seconds=60, **options)
    return scanner.scan(0, node.head), scanner


def test_error_messages_name_their_limits() -> None:
    assert range_in_message(RpcError(-32602, "exceed maximum block range: 50000")) == 50_000
    assert range_in_message(RpcError(-32600, "You can make eth_getLogs requests with up to a 2K block range")) == 2_000
    assert range_in_message(RpcError(-32005, "eth_getLogs is limited to a 10,000 range")) == 10_000
    assert range_in_message(RpcError(-32005, "block range is too large")) is None
    assert range_in_message(RpcError(-32005, "query returned more than 10000 results")) is None
    assert batch_in_message(RpcError(-32600, "batch size too large, max 100")) == 100


def test_an_unnamed_range_limit_is_learned_and_used_in_batches(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP) as proxy:
        chain = through(proxy, node)
        logs, scanner = scan(chain, node, window=8, batch_size=50)

        assert logs == expected_logs(node)
        assert scanner.limits.max_range is not None
        assert CAP * 0.9 <= scanner.limits.max_range <= CAP
        assert sum(scanner.stats.windows) == node.head + 1
        assert scanner.stats.refusals <= 5
        # once learned, the rest goes in batches: far fewer round trips than windows
        assert proxy.http_requests < len(scanner.stats.windows) // 2


def test_a_known_limit_needs_no_probing(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP) as proxy:
        logs, scanner = scan(through(proxy, node), node, batch_size=10, limits=ProviderLimits(max_range=CAP))

        assert logs == expected_logs(node)
        assert scanner.stats.refusals == 0
        windows = -(-(node.head + 1) // CAP)
        assert proxy.calls["eth_getLogs"] == windows
        assert proxy.http_requests == -(-windows // 10)


def test_a_capped_batch_size_is_learned(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP, max_batch=3) as proxy:
        logs, scanner = scan(through(proxy, node), node, batch_size=50, limits=ProviderLimits(max_range=CAP))

        assert logs == expected_logs(node)
        assert scanner.limits.max_batch == 3
        assert scanner.stats.batch_refusals == 1


def test_a_provider_without_batches_gets_single_calls(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP, batches=False) as proxy:
        logs, scanner = scan(through(proxy, node), node, window=8, batch_size=50)

        assert logs == expected_logs(node)
        assert scanner.limits.batches is False
        assert scanner.stats.batch_refusals == 1
        # after the one refused batch, one call per HTTP request
        assert proxy.http_requests - 1 == len(scanner.stats.windows) + scanner.stats.refusals


def test_http_429_is_retried_and_nothing_is_lost(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP, throttle_every=3) as proxy:
        logs, _ = scan(through(proxy, node), node, batch_size=4, limits=ProviderLimits(max_range=CAP))

        assert logs == expected_logs(node)
        assert proxy.throttled > 0


def test_learned_limits_are_remembered_per_endpoint(node: Node, tmp_path: Path) -> None:
    cache = LogCache(tmp_path / "logs.sqlite")
    with LimitedRpc(node.url, max_log_range=CAP, max_batch=5) as proxy:
        cold = read_history(AppAuth(through(proxy, node), node.app.address), ["DeviceAdded"], cache=cache)
        # another event set is not in the log cache, but the endpoint's limits are
        other = read_history(AppAuth(through(proxy, node), node.app.address), ["OwnershipTransferred"], cache=cache)

    assert len(cold.events) == DEVICES
    assert cold.scan.refusals > 0 and cold.scan.batch_refusals > 0
    assert cold.scan.creation == "bisection"
    assert other.scan.refusals == 0 and other.scan.batch_refusals == 0
    assert [e.event for e in other.events] == ["OwnershipTransferred"]


def test_a_pruned_node_scans_from_the_given_block(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP, state_from=node.head - 5) as proxy:
        app = AppAuth(through(proxy, node), node.app.address)
        history = read_history(app, ["DeviceAdded"], from_block=node.created - 3)

    assert history.scan.creation.startswith("pruned node")
    assert f"block {node.created - 3}" in history.scan.creation
    assert len(history.events) == DEVICES
    assert sum(history.scan.windows) == node.head - (node.created - 3) + 1


def test_a_pruned_node_finds_the_start_from_the_kms_factory_event(node: Node) -> None:
    # no state at old blocks, but the provider answers a wide topic-filtered eth_getLogs
    with LimitedRpc(node.url, state_from=node.head - 5) as proxy:
        history = read_history(AppAuth(through(proxy, node), node.app.address), ["DeviceAdded"])

    assert history.scan.creation.startswith("pruned node")
    assert f"block {node.created}" in history.scan.creation and "KMS factory" in history.scan.creation
    assert len(history.events) == DEVICES
    assert sum(history.scan.windows) == node.head - node.created + 1


def test_a_pruned_node_behind_a_range_limit_says_how_to_start_later(node: Node) -> None:
    with LimitedRpc(node.url, max_log_range=CAP, state_from=node.head - 5) as proxy:
        history = read_history(AppAuth(through(proxy, node), node.app.address), ["DeviceAdded"])

    assert "from block 0" in history.scan.creation and "--from-block" in history.scan.creation
    assert len(history.events) == DEVICES


def test_block_times_are_cached_by_block_hash(node: Node, tmp_path: Path) -> None:
    cache = LogCache(tmp_path / "logs.sqlite")
    numbers = [node.created, node.created + GAP, node.head]
    blocks = [(n, node.chain.rpc.call("eth_getBlockByNumber", [hex(n), False])["hash"]) for n in numbers]
    with LimitedRpc(node.url) as proxy:
        chain = through(proxy, node)
        first = block_times(chain, blocks, cache)
        proxy.reset_counts()
        second = block_times(chain, blocks, cache)

    assert first == second == block_times(node.chain, blocks)
    assert sorted(first) == numbers
    assert proxy.http_requests == 0  # every time from the cache, the newest block's too (a hash never changes)
    # another block at the same height (another chain, or after a reorg) is not answered from the cache
    assert cache.get_block_times(["0x" + "ab" * 32]) == {}


@pytest.mark.parametrize(
    ("limits", "most_round_trips"),
    [
        ({"max_log_range": CAP}, 3),
        ({"max_log_range": CAP, "max_batch": 3}, 3),
        ({"max_log_range": CAP, "batches": False}, 6),  # head, cached hash, 2 windows, new hash, multicall
    ],
    ids=["batches", "batches of 3", "no batches"],
)
def test_a_warm_list_and_history_need_only_the_new_blocks(
    node: Node, tmp_path: Path, limits: dict[str, Any], most_round_trips: int
) -> None:
    cache = LogCache(tmp_path / "logs.sqlite")
    wanted = {i.to_bytes(32, "big") for i in range(DEVICES)}
    with LimitedRpc(node.url, **limits) as proxy:
        app = AppAuth(through(proxy, node), node.app.address)
        cold = list_devices(app, Inventory(), cache)
        cold_history = history_json(app, Inventory(), cache)

        proxy.reset_counts()
        warm = list_devices(AppAuth(through(proxy, node), node.app.address), Inventory(), cache)
        list_trips = proxy.http_requests
        proxy.reset_counts()
        warm_history = history_json(AppAuth(through(proxy, node), node.app.address), Inventory(), cache)
        history_trips = proxy.http_requests

    assert {d.device_id for d in cold.devices} == {d.device_id for d in warm.devices} == wanted
    assert warm.owner == cold.owner and warm.head == cold.head
    assert warm_history == cold_history and len(warm_history) == DEVICES
    assert all(row["time"] for row in warm_history)
    assert list_trips <= most_round_trips and history_trips <= most_round_trips - 1


def test_membership_is_confirmed_in_one_multicall(node: Node, tmp_path: Path) -> None:
    cache = LogCache(tmp_path / "logs.sqlite")
    with LimitedRpc(node.url, max_log_range=CAP) as proxy:
        list_devices(AppAuth(through(proxy, node), node.app.address), Inventory(), cache)
        proxy.reset_counts()
        listed = list_devices(AppAuth(through(proxy, node), node.app.address), Inventory(), cache)

    assert len(listed.devices) == DEVICES
    # 12 memberships, the owner and allowAnyDevice: one eth_call to Multicall3
    assert proxy.calls["eth_call"] == 1
    assert cache.get_limits(endpoint_key(proxy.url)) is not None
