"""Small helpers shared by the contract tests: decoded events of a receipt, policy ids, revert checks."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

from warden.chain.abi import DecodedLog
from warden.chain.artifacts import Artifact
from warden.chain.connection import Chain, ContractReverted
from warden.chain.contract import Contract
from warden.chain.deploy import proxy_creation
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, TxRequest, execute, require_success, simulate

ZERO32 = bytes(32)
UNAUTHORIZED = "OwnableUnauthorizedAccount"


def policy_id(name: str) -> bytes:
    """The `policy` topic of PolicyChanged: keccak256 of the policy name."""
    return bytes(keccak(text=name))


def padded(address: str) -> bytes:
    """An address as the contracts put it in a bytes32 (left-padded)."""
    return bytes.fromhex(address[2:]).rjust(32, b"\0")


def receipt_logs(outcome: TxOutcome) -> list[dict[str, Any]]:
    assert outcome.receipt is not None
    return list(outcome.receipt["logs"])


def events(contract: Contract, outcome: TxOutcome) -> list[DecodedLog]:
    """The logs this contract emitted in the transaction, decoded with its ABI, in order."""
    decoded = []
    for log in receipt_logs(outcome):
        if str(log["address"]).lower() != contract.address.lower():
            continue
        event = contract.abi.decode_log(log)
        assert event is not None, f"undecodable log from {contract.address}: {log}"
        decoded.append(event)
    return decoded


def named(decoded: list[DecodedLog], name: str) -> list[dict[str, Any]]:
    return [e.args for e in decoded if e.event == name]


def policy_changes(decoded: list[DecodedLog]) -> list[tuple[str, bytes, bytes, bool]]:
    """PolicyChanged events as (actor, policy, value, enabled)."""
    return [
        (str(a["actor"]), bytes(a["policy"]), bytes(a["value"]), bool(a["enabled"]))
        for a in named(decoded, "PolicyChanged")
    ]


def assert_reverts(chain: Chain, signer: Signer, request: TxRequest, fragment: str) -> None:
    """The request, sent by `signer`, would revert with a reason containing `fragment`."""
    with pytest.raises(ContractReverted) as caught:
        simulate(chain, signer, [request])
    assert fragment in caught.value.reason, caught.value.reason


def send_batch(chain: Chain, signer: Signer, requests: list[TxRequest]) -> list[TxOutcome]:
    """Independent writes sent together and waited for once; fails unless every one mined."""
    return [require_success(o) for o in execute(chain, signer, requests, timeout=30)]


def deploy_proxy_outcome(
    chain: Chain, signer: Signer, implementation: Artifact, impl_address: str, init: bytes
) -> TxOutcome:
    """Like warden.chain.deploy.deploy_proxy, but keeps the receipt: the initializer's events are in it."""
    (outcome,) = execute(chain, signer, [proxy_creation(implementation, impl_address, init)], timeout=30)
    require_success(outcome)
    assert outcome.contract_address is not None
    return outcome
