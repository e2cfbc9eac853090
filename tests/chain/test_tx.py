"""Writes against anvil: owner check, simulation, funds check, pipelined nonces, delivery failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from tests.support.chain import deploy_app
from tests.support.flaky_proxy import FlakyProxy
from warden.chain.app import AppAuth
from warden.chain.connection import Chain, ContractReverted
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer, signer_from_key
from warden.chain.tx import NotOwner, check_owner, execute, send_all, wait_all
from warden.devnet.anvil import Anvil, start_anvil
from warden.errors import BadInput, OperationFailed


def device(n: int) -> bytes:
    return n.to_bytes(32, "big")


def pending_pool(chain: Chain) -> set[str]:
    content: dict[str, dict[str, dict[str, Any]]] = chain.rpc.call("txpool_content")["pending"]
    return {tx["hash"] for by_nonce in content.values() for tx in by_nonce.values()}


@dataclass
class ManualNode:
    """A private anvil that only mines on `evm_mine`, with an app owned by `owner`."""

    chain: Chain
    app: AppAuth

    def mine(self) -> None:
        self.chain.rpc.call("evm_mine")


@pytest.fixture
def manual(owner: Signer) -> Iterator[ManualNode]:
    node = start_anvil()
    try:
        chain = Chain.connect(node.url)
        try:
            kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
            app = deploy_app(chain, owner, kms)
            chain.rpc.call("evm_setAutomine", [False])
            yield ManualNode(chain, app)
        finally:
            chain.close()
    finally:
        node.stop()


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


# -- pipelining ---------------------------------------------------------------------------------------


def test_ten_writes_go_out_with_consecutive_nonces_and_mine_in_one_block(manual: ManualNode, owner: Signer) -> None:
    chain, app = manual.chain, manual.app
    first = chain.nonce(owner.address)
    requests = [app.add_device(device(i)) for i in range(10)]

    outcomes = execute(chain, owner, requests, wait=False)

    assert [o.status for o in outcomes] == ["pending"] * 10
    assert [o.nonce for o in outcomes] == list(range(first, first + 10))
    hashes = [o.tx_hash for o in outcomes]
    assert None not in hashes
    assert len(set(hashes)) == 10
    assert set(hashes) <= pending_pool(chain)
    assert not app.is_device_allowed(device(0))

    manual.mine()
    wait_all(chain, outcomes, timeout=10, poll=0.05)

    assert [o.status for o in outcomes] == ["mined"] * 10
    assert len({o.block_number for o in outcomes}) == 1
    assert all(o.error is None for o in outcomes)
    assert all(app.is_device_allowed(device(i)) for i in range(10))
    assert chain.nonce(owner.address, "latest") == first + 10


def test_wait_all_deadline_leaves_transactions_pending_with_their_hash(manual: ManualNode, owner: Signer) -> None:
    outcomes = execute(manual.chain, owner, [manual.app.add_device(device(1))], wait=False)
    seen: list[tuple[int, int]] = []

    wait_all(manual.chain, outcomes, timeout=0.5, poll=0.05, on_progress=lambda d, t: seen.append((d, t)))

    (outcome,) = outcomes
    assert outcome.status == "pending"
    assert outcome.tx_hash is not None
    assert outcome.error == "not mined within 0.5 s"  # the hash is shown beside it, not repeated in it
    assert seen and seen[-1] == (0, 1)
    # it is still in the pool: mining it later settles it
    manual.mine()
    wait_all(manual.chain, outcomes, timeout=10, poll=0.05)
    assert [(o.status, o.error) for o in outcomes] == [("mined", None)]


# -- refusals before anything is sent ----------------------------------------------------------------


def test_a_non_owner_signer_is_refused_before_sending(chain: Chain, app: AppAuth, stranger: Signer) -> None:
    nonce = chain.nonce(stranger.address)
    with pytest.raises(NotOwner) as caught:
        check_owner(app.owner(), stranger, f"app {app.address}")
    assert isinstance(caught.value, BadInput)
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"signer {stranger.address} is not the owner {app.owner()} of app {app.address}; nothing was sent"
    )
    assert chain.nonce(stranger.address) == nonce


def test_the_owner_passes_the_check_in_any_case(app: AppAuth, owner: Signer) -> None:
    check_owner(app.owner().lower(), owner, "app")


def test_a_reverting_request_is_caught_by_simulation_and_nothing_is_sent(
    flaky_chain: Chain, flaky: FlakyProxy, chain: Chain, app: AppAuth, stranger: Signer
) -> None:
    nonce = chain.nonce(stranger.address)
    request = AppAuth(flaky_chain, app.address).add_device(device(7))

    with pytest.raises(ContractReverted) as caught:
        execute(flaky_chain, stranger, [request])

    reason = f"OwnableUnauthorizedAccount(account={stranger.address})"
    assert str(caught.value) == f"{request.label} would revert: {reason}; nothing was sent"
    assert caught.value.exit_code == 1
    assert flaky.requests_for("eth_sendRawTransaction") == []
    assert chain.nonce(stranger.address) == nonce
    assert not app.is_device_allowed(device(7))


def test_an_unfunded_signer_is_refused_before_sending(
    flaky_chain: Chain, flaky: FlakyProxy, chain: Chain, kms: KmsRegistry
) -> None:
    broke = signer_from_key("0x" + Account.create().key.hex(), "test")

    with pytest.raises(OperationFailed) as caught:
        execute(flaky_chain, broke, [KmsRegistry(flaky_chain, kms.address).deploy_app(broke.address)])

    message = str(caught.value)
    assert re.fullmatch(
        rf"insufficient funds: {broke.address} has 0 ETH, needs up to [0-9.]+ ETH "
        r"for 1 transaction\(s\) on chain 31337; nothing was sent",
        message,
    ), message
    assert caught.value.exit_code == 1
    assert flaky.requests_for("eth_sendRawTransaction") == []
    assert chain.nonce(broke.address) == 0


# -- delivery failures --------------------------------------------------------------------------------


def test_rpc_failing_mid_batch_reports_what_went_out_and_a_rerun_finishes(
    flaky_chain: Chain, flaky: FlakyProxy, chain: Chain, app: AppAuth, owner: Signer
) -> None:
    flaky.fail_method("eth_sendRawTransaction", "drop", after=2)
    flaky_app = AppAuth(flaky_chain, app.address)
    requests = [flaky_app.add_device(device(i)) for i in range(5)]

    outcomes = execute(flaky_chain, owner, requests, wait=False)
    wait_all(flaky_chain, outcomes, timeout=30, poll=0.05)

    assert [o.status for o in outcomes] == ["mined", "mined", "failed", "failed", "failed"]
    third = outcomes[2]
    assert third.error is not None
    assert "eth_sendRawTransaction: RPC unavailable" in third.error
    assert third.tx_hash is not None  # kept: the node might have received it
    for later in outcomes[3:]:
        assert later.error is not None
        assert later.error.startswith(f"not sent: transaction 3 ({requests[2].label}) could not be delivered")
        assert later.tx_hash is None
    # the first two were delivered once each; the third was tried 3 times and never reached the node
    assert [r.fault for r in flaky.requests_for("eth_sendRawTransaction")] == ["pass", "pass"] + ["drop"] * 3
    assert [app.is_device_allowed(device(i)) for i in range(5)] == [True, True, False, False, False]
    # the node never saw the third one, so nobody waits out the deadline polling for its receipt
    polled = [r.payload for r in flaky.requests_for("eth_getTransactionReceipt")]
    assert third.tx_hash not in repr(polled)

    rerun = [o.request for o in outcomes if o.status != "mined"]
    again = execute(chain, owner, rerun, timeout=10)

    assert [o.status for o in again] == ["mined"] * 3
    assert all(app.is_device_allowed(device(i)) for i in range(5))


def test_a_transaction_the_node_refuses_stops_the_batch(
    anvil: Anvil, chain: Chain, app: AppAuth, owner: Signer
) -> None:
    with FlakyProxy(anvil.url, reject_message="replacement transaction underpriced") as proxy:
        proxy.fail_method("eth_sendRawTransaction", "reject", after=1)
        with RpcClient(proxy.url, backoff=0.01) as rpc:
            flaky_app = AppAuth(Chain(rpc, chain.chain_id), app.address)
            requests = [flaky_app.add_device(device(i)) for i in range(3)]
            outcomes = execute(flaky_app.chain, owner, requests, timeout=10)
        # a refusal is the node's verdict: not retried, and the later nonces are not used
        assert [r.fault for r in proxy.requests_for("eth_sendRawTransaction")] == ["pass", "reject"]

    assert [o.status for o in outcomes] == ["mined", "failed", "failed"]
    assert outcomes[1].error == "replacement transaction underpriced"
    assert outcomes[1].tx_hash is None
    assert outcomes[2].error == (
        f"not sent: transaction 2 ({requests[1].label}) was refused: replacement transaction underpriced"
    )
    assert [app.is_device_allowed(device(i)) for i in range(3)] == [True, False, False]


def test_a_retried_delivery_the_node_already_has_counts_as_sent(
    flaky_chain: Chain, flaky: FlakyProxy, chain: Chain, app: AppAuth, owner: Signer
) -> None:
    # the node receives the first transaction but its answer is lost; the client sends it again
    flaky.fail_method("eth_sendRawTransaction", "lose", times=1)
    flaky_app = AppAuth(flaky_chain, app.address)
    nonce = chain.nonce(owner.address)

    outcomes = execute(flaky_chain, owner, [flaky_app.add_device(device(1)), flaky_app.add_device(device(2))])

    assert [(o.status, o.error) for o in outcomes] == [("mined", None), ("mined", None)]
    assert [r.fault for r in flaky.requests_for("eth_sendRawTransaction")] == ["lose", "pass", "pass"]
    assert chain.nonce(owner.address) == nonce + 2
    assert app.is_device_allowed(device(1))
    assert app.is_device_allowed(device(2))


def test_a_transaction_that_reverts_on_chain_reports_the_decoded_reason(
    chain: Chain, app: AppAuth, stranger: Signer
) -> None:
    # explicit gas skips the simulation, so the revert happens on chain
    outcomes = send_all(chain, stranger, [app.remove_device(device(0))], gas=[200_000])
    wait_all(chain, outcomes, timeout=10, poll=0.05)

    (outcome,) = outcomes
    assert outcome.status == "reverted"
    assert outcome.error == f"reverted: OwnableUnauthorizedAccount(account={stranger.address})"
    assert outcome.receipt is not None
    assert outcome.receipt["status"] == "0x0"
    assert outcome.block_number == int(outcome.receipt["blockNumber"], 16)
