"""The one change flow on a real anvil: plans read the chain, carry_out checks before it sends, sends with
consecutive nonces, re-reads, and hands changes for other owners back without sending anything."""

from __future__ import annotations

import pytest

from tests.support.chain import deploy_app
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.chain.tx import NotOwner
from warden.changes.asked import allow_any_device_change, compose_hash_changes, device_changes
from warden.changes.flow import Delivery, carry_out
from warden.changes.plan import Plan
from warden.errors import BadInput

A, B, C = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3))
H = bytes([0x44]) * 32


def no_signer() -> Signer:
    raise AssertionError("the signer must not be asked for")


def test_plan_keeps_the_order_asked_and_skips_what_is_already_so(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    plan = device_changes(app, [(B, "prod6"), (A, "prod5"), (C, None)], add=True)
    assert [(e.value, type(e).__name__) for e in plan.entries] == [(B, "Change"), (A, "Unchanged"), (C, "Change")]
    with pytest.raises(BadInput, match="given twice"):
        device_changes(app, [(B, None), (B, "prod6")], add=True)


def test_send_waits_once_and_reports_what_the_chain_says(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    plan = device_changes(app, [(B, "prod6"), (A, "prod5"), (C, None)], add=True)
    plan.extend(compose_hash_changes(app, [(H, "app-compose.json")], add=True))
    nonce = chain.nonce(owner.address)
    report = carry_out(plan, Delivery("send", wait=True, timeout=30), lambda: owner)
    assert [(r["status"], bool(r["tx"])) for r in report.rows()] == [
        ("added", True), ("already-allowed", False), ("added", True), ("added", True)
    ]  # fmt: skip
    txs = [r.tx for r in report.results]
    assert [int(chain.rpc.call("eth_getTransactionByHash", [t])["nonce"], 16) for t in txs] == [nonce, nonce + 1,
                                                                                               nonce + 2]  # fmt: skip
    assert app.is_device_allowed(B) and app.is_device_allowed(C) and app.is_compose_hash_allowed(H)


def test_without_wait_changes_are_pending_with_their_tx(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms)
    report = carry_out(allow_any_device_change(app, True), Delivery("send"), lambda: owner)
    (result,) = report.results
    assert result.status == "pending" and result.tx is not None and report.pending == [result]


def test_a_signer_that_does_not_own_every_contract_sends_nothing(
    chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry
) -> None:
    mine = deploy_app(chain, owner, kms)
    theirs = deploy_app(chain, owner, kms, owner=third.address)
    plan = (
        Plan().extend(device_changes(mine, [(A, None)], add=True)).extend(device_changes(theirs, [(A, None)], add=True))
    )
    nonce = chain.nonce(owner.address)
    with pytest.raises(NotOwner, match=f"not the owner {third.address}"):
        carry_out(plan, Delivery("send", wait=True), lambda: owner)
    assert chain.nonce(owner.address) == nonce and not mine.is_device_allowed(A)


def test_offline_never_asks_for_the_signer_and_needs_one_owner(
    chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, kms, owner=third.address)
    report = carry_out(device_changes(app, [(A, None), (B, None)], add=True), Delivery("calldata"), no_signer)
    assert report.offline is not None and report.offline.owner == third.address
    assert [c["call"] for c in report.offline.calls] == [f"addDevice 0x{A.hex()}", f"addDevice 0x{B.hex()}"]
    other = deploy_app(chain, owner, kms)
    both = device_changes(app, [(A, None)], add=True).extend(device_changes(other, [(A, None)], add=True))
    with pytest.raises(BadInput, match="2 different owners"):
        carry_out(both, Delivery("calldata"), no_signer)


def test_an_empty_plan_sends_nothing_and_asks_nobody(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms, device_id=A)
    report = carry_out(device_changes(app, [(A, None)], add=True), Delivery("send", wait=True), no_signer)
    assert report.results == [] and report.rows()[0]["status"] == "already-allowed"
