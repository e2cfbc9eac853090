"""Contract history: the creation block by bisection, and eth_getLogs in windows the node accepts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.chain import send
from tests.support.flaky_proxy import FlakyProxy
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.events import LogScanner, find_creation_block
from warden.chain.history import read_history
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient, RpcError
from warden.chain.signer import Signer
from warden.devnet.anvil import start_anvil
from warden.errors import BadInput

# anvil_mine gets slower with every block already on the chain (1000 blocks at height 2000 take seconds),
# so the "node caps eth_getLogs at N blocks" scenario is scaled down: a cap of 50 blocks and events
# spread over about 300 blocks of a private node exercise the same windows as 1000 over 6000 would.
CAP = 50
GAP = 60  # empty blocks between two writes
DEVICES = 5


def mine(chain: Chain, blocks: int) -> None:
    chain.rpc.call("anvil_mine", [hex(blocks)])


def device(n: int) -> bytes:
    return n.to_bytes(32, "big")


@dataclass(frozen=True)
class History:
    """A private node with an app whose DeviceAdded events are spread over about 300 blocks."""

    url: str
    chain: Chain
    app: AppAuth
    created: int
    head: int
    device_blocks: list[int]
    device_txs: list[str]


@pytest.fixture(scope="module")
def history(owner: Signer) -> Iterator[History]:
    node = start_anvil()
    chain = Chain.connect(node.url)
    try:
        kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
        created = send(chain, owner, kms.deploy_app(owner.address))
        assert created.receipt is not None and created.block_number is not None
        app = AppAuth.open(chain, kms.app_from_receipt(created.receipt))
        blocks, txs = [], []
        for i in range(DEVICES):
            mine(chain, GAP)
            outcome = send(chain, owner, app.add_device(device(i)))
            assert outcome.block_number is not None and outcome.tx_hash is not None
            blocks.append(outcome.block_number)
            txs.append(outcome.tx_hash)
        mine(chain, 10)
        yield History(node.url, chain, app, created.block_number, chain.block_number(), blocks, txs)
    finally:
        chain.close()
        node.stop()


@pytest.fixture
def capped(history: History) -> Iterator[FlakyProxy]:
    """The history node behind a proxy refusing eth_getLogs over more than CAP blocks, like public RPCs."""
    with FlakyProxy(history.url, max_log_range=CAP) as proxy:
        yield proxy


@pytest.fixture
def capped_chain(capped: FlakyProxy, history: History) -> Iterator[Chain]:
    with RpcClient(capped.url, backoff=0.01) as rpc:
        yield Chain(rpc, history.chain.chain_id)


# -- creation block -----------------------------------------------------------------------------------


def test_find_creation_block_returns_the_block_the_contract_appeared_in(
    chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    mine(chain, 7)
    outcome = send(chain, owner, kms.deploy_app(owner.address))
    assert outcome.receipt is not None and outcome.block_number is not None
    app = kms.app_from_receipt(outcome.receipt)
    mine(chain, 5)

    assert find_creation_block(chain, app) == outcome.block_number
    assert find_creation_block(chain, app, head=outcome.block_number) == outcome.block_number
    with pytest.raises(BadInput):
        find_creation_block(chain, app, head=outcome.block_number - 1)


def test_find_creation_block_of_an_address_without_code_is_bad_input(chain: Chain, stranger: Signer) -> None:
    with pytest.raises(BadInput) as caught:
        find_creation_block(chain, stranger.address)
    assert str(caught.value) == f"no contract at {stranger.address} on chain 31337"
    assert caught.value.exit_code == 2


# -- scanning -----------------------------------------------------------------------------------------


def test_scanner_narrows_its_window_when_the_node_refuses_a_range(
    history: History, capped: FlakyProxy, capped_chain: Chain
) -> None:
    # anvil itself has no cap: one request gives the reference answer
    expected = history.chain.get_logs(history.app.address, history.created, history.head)
    assert len(expected) > DEVICES
    scanner = LogScanner(capped_chain, history.app.address, window=2 * CAP, fast_seconds=60)

    logs = scanner.scan(history.created, history.head)

    assert logs == expected
    assert len({(log["transactionHash"], log["logIndex"]) for log in logs}) == len(logs)
    assert scanner.stats.refusals == 1  # once refused, it does not ask for a refused width again
    assert max(scanner.stats.windows) == CAP
    assert sum(scanner.stats.windows) == history.head - history.created + 1
    assert [r.fault for r in capped.requests_for("eth_getLogs")].count("range") == 1


def test_scanner_grows_its_window_while_the_node_answers(history: History) -> None:
    chain = history.chain
    scanner = LogScanner(chain, history.app.address, window=5, fast_seconds=60)
    progress: list[tuple[int, int]] = []

    logs = scanner.scan(history.created, history.head, on_progress=lambda d, t: progress.append((d, t)))

    assert logs == chain.get_logs(history.app.address, history.created, history.head)
    windows = scanner.stats.windows
    assert windows[:5] == [5, 10, 20, 40, 80]
    assert all(b == 2 * a for a, b in itertools.pairwise(windows[:-1]))  # the last one is cut at the head
    assert scanner.stats.refusals == 0
    total = history.head - history.created + 1
    assert progress[-1] == (total, total)


def test_scanner_gives_up_when_even_the_smallest_window_is_refused(history: History, capped_chain: Chain) -> None:
    scanner = LogScanner(capped_chain, history.app.address, window=4 * CAP, min_window=2 * CAP)
    with pytest.raises(RpcError, match=f"query exceeds max block range {CAP}"):
        scanner.scan(history.created, history.head)


def test_events_decode_device_ids_in_chain_order_through_a_capped_node(history: History, capped_chain: Chain) -> None:
    app = AppAuth(capped_chain, history.app.address)

    events = read_history(app, ["DeviceAdded"]).events

    assert [e.event for e in events] == ["DeviceAdded"] * DEVICES
    assert [e.args for e in events] == [{"deviceId": device(i)} for i in range(DEVICES)]
    assert [e.block_number for e in events] == history.device_blocks
    assert [e.tx_hash for e in events] == history.device_txs
    assert {e.address for e in events} == {history.app.address}


def test_events_filter_by_name(history: History) -> None:
    events = read_history(history.app, ["OwnershipTransferred", "DeviceRemoved"]).events
    assert [e.event for e in events] == ["OwnershipTransferred"]
    assert events[0].block_number == history.created
