"""Many view calls in one round trip: Multicall3 aggregate3 where it is deployed, batched calls elsewhere.

The answers must be the same either way, reverts included; the round trips are counted by a real proxy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chain import deploy_app, send
from tests.support.limited_rpc import LimitedRpc
from warden.chain.abi import ContractAbi
from warden.chain.allowlist import device_spec, membership
from warden.chain.app import AppAuth
from warden.chain.connection import Chain, ContractReverted
from warden.chain.contract import Contract
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.multicall import CALLS_PER_MULTICALL
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil, start_anvil

ALLOWED = [bytes([0xA0 + i]) * 32 for i in range(3)]
NOPE = ContractAbi([{"type": "function", "name": "nope", "stateMutability": "view", "inputs": [],
                     "outputs": [{"name": "", "type": "uint256"}]}])  # fmt: skip


def ids(count: int) -> list[bytes]:
    """`count` device ids, the allowed ones among them."""
    return [*ALLOWED, *(i.to_bytes(32, "big") for i in range(1, count - len(ALLOWED) + 1))]


def app_on(chain: Chain, owner: Signer) -> AppAuth:
    kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
    app = deploy_app(chain, owner, kms, device_id=ALLOWED[0])
    for device in ALLOWED[1:]:
        send(chain, owner, app.add_device(device))
    return app


@pytest.fixture(scope="module")
def bare_anvil() -> Iterator[Anvil]:
    """A chain without Multicall3 (the session's chain has it, as Base and Ethereum do)."""
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


def through(proxy: LimitedRpc, chain_id: int) -> Chain:
    return Chain(RpcClient(proxy.url), chain_id)


def test_membership_of_many_ids_is_one_round_trip_with_multicall(anvil: Anvil, chain: Chain, owner: Signer) -> None:
    app = app_on(chain, owner)
    count = 2 * CALLS_PER_MULTICALL + 100
    with LimitedRpc(anvil.url) as proxy:
        proxied = through(proxy, chain.chain_id)
        found = membership(device_spec(AppAuth(proxied, app.address)), ids(count))

    assert found == [True] * len(ALLOWED) + [False] * (count - len(ALLOWED))
    assert proxy.http_requests == 1 and proxy.calls["eth_call"] == 3  # 500 views per aggregate3
    assert proxied.limits.multicall is True


@pytest.fixture(scope="module")
def bare_chain(bare_anvil: Anvil) -> Iterator[Chain]:
    chain = Chain.connect(bare_anvil.url)
    try:
        yield chain
    finally:
        chain.close()


def test_without_multicall_the_answers_are_the_same_in_batches(
    bare_anvil: Anvil, bare_chain: Chain, owner: Signer
) -> None:
    app = app_on(bare_chain, owner)
    count = CALLS_PER_MULTICALL + 20
    with LimitedRpc(bare_anvil.url) as proxy:
        proxied = through(proxy, bare_chain.chain_id)
        first = membership(device_spec(AppAuth(proxied, app.address)), ids(count))
        tried = proxy.http_requests
        proxy.reset_counts()
        second = membership(device_spec(AppAuth(proxied, app.address)), ids(count))

    assert first == second == [True] * len(ALLOWED) + [False] * (count - len(ALLOWED))
    assert proxied.limits.multicall is False  # found out once, remembered for the endpoint
    assert tried == 1 + 2  # the one aggregate3 that found no contract, then two batches of 500
    assert proxy.http_requests == 2 and proxy.calls["eth_call"] == count


@pytest.mark.parametrize("with_multicall", [True, False])
def test_a_reverting_view_is_a_revert_either_way(
    with_multicall: bool, chain: Chain, bare_chain: Chain, owner: Signer
) -> None:
    target = chain if with_multicall else bare_chain
    app = app_on(target, owner)
    answers = app.call_many([("owner", ()), ("allowAnyDevice", ())])
    assert answers == [owner.address, False]

    odd = Contract(target, app.address, NOPE)  # a view the contract does not have: it reverts
    reverted = odd.call_many([("nope", ()), ("nope", ())])
    assert all(isinstance(r, ContractReverted) for r in reverted)
