"""The log cache behind `allow-devices list|history`: used when it can be, never when it would lie.

It must save requests on the second read, keep chains with the same addresses apart, never keep blocks
a reorg could still replace, and shrug off a damaged file.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.chain import deploy_app, send
from tests.support.flaky_proxy import FlakyProxy
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.history import History, read_history
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import REORG_DEPTH, LogCache
from warden.chain.signer import Signer, signer_from_key
from warden.devnet.anvil import Anvil, start_anvil
from warden.fleet.devices import DEVICE_EVENTS, device_history, list_devices
from warden.fleet.inventory import Inventory

A, B, C, X = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3, 0xEE))


def mine(chain: Chain, blocks: int) -> None:
    chain.rpc.call("anvil_mine", [hex(blocks)])


def summary(history: History) -> list[tuple[str, bytes | None, int, str]]:
    return [(e.event, e.args.get("deviceId"), e.block_number, e.tx_hash) for e in history.events]


def device_ids(history: History) -> list[bytes]:
    return [bytes(e.args["deviceId"]) for e in history.events if "deviceId" in e.args]


@pytest.fixture
def cache(tmp_path: Path) -> LogCache:
    return LogCache(tmp_path / "cache" / "logs.sqlite")


def genesis_hash(chain: Chain) -> str:
    return str(chain.rpc.call("eth_getBlockByNumber", ["0x0", False])["hash"])


@pytest.fixture
def fresh_chain(chain: Chain, tmp_path: Path) -> Iterator[Callable[[], Chain]]:
    """Start private anvils on demand, each with a genesis of its own (anvil stamps the genesis with the
    current second, so two started in the same second would be the same chain as far as hashes go)."""
    nodes: list[Anvil] = []
    chains: list[Chain] = []
    seen = {genesis_hash(chain)}
    numbers = itertools.count()

    def start() -> Chain:
        while True:
            nodes.append(start_anvil(log_path=tmp_path / f"anvil-{next(numbers)}.log"))
            chains.append(Chain.connect(nodes[-1].url))
            if genesis_hash(chains[-1]) not in seen:
                seen.add(genesis_hash(chains[-1]))
                return chains[-1]
            chains.pop().close()
            nodes.pop().stop()
            time.sleep(0.1)

    try:
        yield start
    finally:
        for started in chains:
            started.close()
        for node in nodes:
            node.stop()


def new_app(chain: Chain, owner: Signer, device: bytes) -> AppAuth:
    kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
    return deploy_app(chain, owner, kms, device_id=device)


def test_second_read_comes_from_the_cache_with_fewer_requests_and_the_same_events(
    chain: Chain, owner: Signer, kms: KmsRegistry, flaky: FlakyProxy, flaky_chain: Chain, cache: LogCache
) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    for device in (B, C):
        mine(chain, 15)
        send(chain, owner, app.add_device(device))
    send(chain, owner, app.remove_device(A))
    mine(chain, 5)
    flaky.max_log_range = 4  # a node that refuses wide eth_getLogs makes every scanned block count
    proxied = AppAuth(flaky_chain, app.address)

    first = read_history(proxied, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    first_scans = len(flaky.requests_for("eth_getLogs"))
    second = read_history(proxied, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    second_scans = len(flaky.requests_for("eth_getLogs")) - first_scans

    assert first.from_cache == 0
    assert second.from_cache == 4  # every event is older than the reorg depth
    assert summary(second) == summary(first)
    assert device_ids(first) == [A, B, C, A]
    assert second_scans < first_scans


def test_events_after_the_cached_blocks_are_still_found(
    chain: Chain, owner: Signer, kms: KmsRegistry, cache: LogCache
) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    mine(chain, 3)
    assert device_ids(read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=1)) == [A]
    send(chain, owner, app.add_device(B))
    send(chain, owner, app.remove_device(A))
    later = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=1)
    assert later.from_cache == 1
    assert [(e.event, e.args["deviceId"]) for e in later.events] == [
        ("DeviceAdded", A),
        ("DeviceAdded", B),
        ("DeviceRemoved", A),
    ]


def test_list_uses_the_cache_by_default_once_blocks_are_old_enough(
    chain: Chain, owner: Signer, kms: KmsRegistry, cache: LogCache
) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    send(chain, owner, app.add_device(B))
    mine(chain, REORG_DEPTH + 2)
    first = list_devices(app, Inventory(), cache)
    assert device_history(app, cache).from_cache == 2
    assert list_devices(app, Inventory(), cache) == first
    assert [d.device_id for d in first.devices] == [A, B]


def test_a_fresh_chain_with_the_same_addresses_does_not_reuse_the_cache(
    chain: Chain, fresh_chain: Callable[[], Chain], cache: LogCache
) -> None:
    deployer = signer_from_key("0x" + secrets.token_hex(32), "test")  # nonce 0 on both chains
    other = fresh_chain()
    for each in (chain, other):
        each.rpc.call("anvil_setBalance", [deployer.address, hex(10**20)])

    app_one = new_app(chain, deployer, A)
    send(chain, deployer, app_one.add_device(B))
    mine(chain, REORG_DEPTH + 2)
    assert [d.device_id for d in list_devices(app_one, Inventory(), cache).devices] == [A, B]

    app_two = new_app(other, deployer, C)  # same deployer, same nonces: the same addresses
    assert app_two.address == app_one.address
    mine(other, REORG_DEPTH + 2)
    assert [d.device_id for d in list_devices(app_two, Inventory(), cache).devices] == [C]
    assert [e.event for e in device_history(app_two, cache).events] == ["DeviceAdded"]

    # the cache now holds the second chain's logs: the first chain's block hash does not match them,
    # so its history is read again from its own chain, not taken from the other's
    back = device_history(app_one, cache)
    assert (device_ids(back), back.from_cache) == ([A, B], 0)
    assert device_history(app_one, cache).from_cache == 2


def test_a_shallow_reorg_never_reaches_the_cache(
    fresh_chain: Callable[[], Chain], owner: Signer, cache: LogCache
) -> None:
    chain = fresh_chain()
    app = new_app(chain, owner, X)
    mine(chain, 3)
    snapshot = chain.rpc.call("evm_snapshot")
    send(chain, owner, app.add_device(A))
    before = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    assert device_ids(before) == [X, A]

    assert chain.rpc.call("evm_revert", [snapshot]) is True  # the block that added A is gone …
    send(chain, owner, app.add_device(B))  # … replaced by one that adds B
    after = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    assert device_ids(after) == [X, B]
    assert after.from_cache == 1  # the initializer's event, older than the reorg depth, stayed cached
    assert [d.device_id for d in list_devices(app, Inventory()).devices] == [X, B]


def test_a_reorg_deeper_than_the_cached_blocks_drops_the_cache(
    fresh_chain: Callable[[], Chain], owner: Signer, cache: LogCache
) -> None:
    chain = fresh_chain()
    app = new_app(chain, owner, X)
    snapshot = chain.rpc.call("evm_snapshot")
    send(chain, owner, app.add_device(A))
    mine(chain, 5)
    before = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    assert device_ids(before) == [X, A]
    assert device_ids(read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=2)) == [X, A]

    assert chain.rpc.call("evm_revert", [snapshot]) is True
    send(chain, owner, app.add_device(B))
    mine(chain, 6)  # the new chain is as long as the old one: only block hashes tell them apart
    after = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=2)
    assert device_ids(after) == [X, B]
    assert after.from_cache == 0


def test_a_rolled_back_chain_shorter_than_the_cache_is_rescanned(
    fresh_chain: Callable[[], Chain], owner: Signer, cache: LogCache
) -> None:
    chain = fresh_chain()
    app = new_app(chain, owner, X)
    send(chain, owner, app.add_device(A))
    mine(chain, 6)
    assert device_ids(read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=1)) == [X, A]
    chain.rpc.call("anvil_rollback", [7])  # drops the mined blocks and the one that added A
    assert device_ids(read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=1)) == [X]


def test_a_damaged_cache_file_is_ignored(chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path) -> None:
    path = tmp_path / "logs.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 512)
    cache = LogCache(path)
    app = deploy_app(chain, owner, kms, device_id=A)
    mine(chain, 3)
    for _ in range(2):
        history = read_history(app, DEVICE_EVENTS, cache=cache, reorg_depth=1)
        assert (device_ids(history), history.from_cache) == ([A], 0)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert device_ids(read_history(app, DEVICE_EVENTS, cache=LogCache(garbage), reorg_depth=1)) == [A]
