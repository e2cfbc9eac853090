"""Writes: check who signs, simulate, send every transaction with consecutive nonces, then wait for all.

Sending first and waiting once costs about one block for the whole batch instead of one block per
transaction. If a transaction cannot be handed to the node, the ones after it are not sent (their
nonces would leave a gap and never mine); the report says which went out, so a rerun finishes the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_utils import keccak, to_checksum_address

from warden.chain.abi import ContractAbi
from warden.chain.connection import Chain, ContractReverted, as_revert
from warden.chain.rpc import RpcError
from warden.chain.signer import Signer
from warden.errors import BadInput, OperationFailed

TxStatus = Literal["pending", "mined", "reverted", "failed"]

ALREADY_KNOWN = ("already known", "already imported")
# where a transaction of a public chain can be looked up (`{explorer}/tx/{hash}`); a devnet has none
TX_EXPLORERS = {1: "https://etherscan.io", 8453: "https://basescan.org", 84532: "https://sepolia.basescan.org"}
GAS_HEADROOM = 1.25  # estimates can be a little short when state changes between estimate and mining


@dataclass
class TxRequest:
    """One intended write; `label` is how reports name it (e.g. `addDevice 0x12…`)."""

    to: str | None
    data: bytes
    label: str
    abi: ContractAbi | None = None
    value: int = 0


@dataclass
class TxOutcome:
    request: TxRequest
    status: TxStatus
    tx_hash: str | None = None
    nonce: int | None = None
    block_number: int | None = None
    contract_address: str | None = None
    error: str | None = None
    receipt: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WaitStatus:
    """Where a wait for receipts stands, for a live display: how many are mined, the chain's latest block,
    the confirmations of the least confirmed mined one (None before any is), and the seconds waited."""

    mined: int
    total: int
    block: int | None
    confirmations: int | None
    elapsed: float


WaitProgress = Callable[[WaitStatus], None]


class NotOwner(BadInput):
    """The signer cannot make this change: nothing was sent."""


def check_owner(owner: str, signer: Signer, subject: str, chain: Chain | None = None) -> None:
    """Refuse before simulating when the signer is not the contract owner.

    When the owner is itself a contract (a Safe, a timelock), say so: it needs a batch file or calldata.
    """
    if owner.lower() == signer.address.lower():
        return
    if chain is not None and chain.get_code(owner):
        raise NotOwner(
            f"{subject} is owned by the contract {owner} (a Safe or another multisig?), not by signer "
            f"{signer.address}: write the changes as a Safe batch (--safe-batch FILE) or print their "
            "calldata (--calldata); nothing was sent"
        )
    raise NotOwner(f"signer {signer.address} is not the owner {owner} of {subject}; nothing was sent")


def simulate(chain: Chain, signer: Signer, requests: Sequence[TxRequest]) -> list[int]:
    """Estimate every request from the signer's address; a revert raises naming the request.

    Returns the gas estimates. Requests are simulated against the current state, so a request that
    depends on an earlier one in the same batch must be sent in a later batch.
    """
    calls = []
    for req in requests:
        tx: dict[str, str] = {"from": signer.address, "data": "0x" + req.data.hex(), "value": hex(req.value)}
        if req.to:
            tx["to"] = req.to
        calls.append(("eth_estimateGas", [tx]))
    estimates = []
    for req, answer in zip(requests, chain.rpc.batch(calls), strict=True):
        if isinstance(answer, RpcError):
            failure = as_revert(answer, req.abi)
            if isinstance(failure, ContractReverted):
                raise ContractReverted(f"{req.label} would revert: {failure.reason}; nothing was sent", failure.data)
            raise failure
        if isinstance(answer, Exception):
            raise answer
        estimates.append(int(answer, 16))
    return estimates


def send_all(
    chain: Chain, signer: Signer, requests: Sequence[TxRequest], gas: Sequence[int] | None = None
) -> list[TxOutcome]:
    """Simulate all (unless `gas` is given), check funds, then sign and send with consecutive nonces."""
    if not requests:
        return []
    estimates = list(gas) if gas is not None else simulate(chain, signer, requests)
    limits = [int(e * GAS_HEADROOM) + 10_000 for e in estimates]
    fees = chain.fee_params()
    worst_price = fees.legacy_gas_price or fees.max_fee_per_gas
    needed = sum(limit * worst_price for limit in limits) + sum(r.value for r in requests)
    have = chain.balance(signer.address)
    if have < needed:
        raise OperationFailed(
            f"insufficient funds: {signer.address} has {_eth(have)} ETH, needs up to {_eth(needed)} ETH "
            f"for {len(requests)} transaction(s) on chain {chain.chain_id}; nothing was sent"
        )
    first_nonce = chain.nonce(signer.address, "pending")
    outcomes: list[TxOutcome] = []
    broken: str | None = None
    for i, (req, limit) in enumerate(zip(requests, limits, strict=True)):
        if broken is not None:
            outcomes.append(TxOutcome(req, "failed", error=f"not sent: {broken}"))
            continue
        tx: dict[str, Any] = {
            "chainId": chain.chain_id,
            "nonce": first_nonce + i,
            "gas": limit,
            "data": req.data,
            "value": req.value,
        }
        if req.to:
            tx["to"] = to_checksum_address(req.to)
        tx.update(fees.tx_fields())
        raw = signer.sign_transaction(tx)
        tx_hash = "0x" + bytes(keccak(raw)).hex()
        try:
            chain.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as exc:
            if not _delivered_before(chain, tx_hash, exc):
                broken = f"transaction {i + 1} ({req.label}) was refused: {exc.rpc_message}"
                outcomes.append(TxOutcome(req, "failed", nonce=first_nonce + i, error=exc.rpc_message))
                continue
        except OperationFailed as exc:
            # the node may or may not have it: keep the hash so a later receipt poll can tell
            broken = f"transaction {i + 1} ({req.label}) could not be delivered: {exc}"
            outcomes.append(TxOutcome(req, "failed", tx_hash=tx_hash, nonce=first_nonce + i, error=str(exc)))
            continue
        outcomes.append(TxOutcome(req, "pending", tx_hash=tx_hash, nonce=first_nonce + i))
    return outcomes


def wait_all(
    chain: Chain,
    outcomes: Sequence[TxOutcome],
    *,
    timeout: float = 60.0,
    poll: float = 0.2,
    on_progress: Callable[[int, int], None] | None = None,
    on_wait: WaitProgress | None = None,
) -> list[TxOutcome]:
    """Poll all receipts in one batch request per round until each is mined or the deadline passes.

    A transaction whose delivery failed is polled too when the node knows it after all; one the node
    never received is not waited for. After each round, `on_progress(mined, total)` and `on_wait(status)`
    (which also asks for the latest block, in the same batch) say where the wait stands.
    """
    started = time.monotonic()
    deadline = started + timeout
    waiting = [o for o in outcomes if o.status == "pending"]
    waiting += [o for o in outcomes if o.status == "failed" and o.tx_hash and _node_has(chain, o.tx_hash)]
    watched = list(waiting)
    total = len(waiting)
    rounds = 0
    while waiting:
        calls = [("eth_getTransactionReceipt", [o.tx_hash]) for o in waiting]
        if on_wait:
            calls.append(("eth_blockNumber", []))
        try:
            answers = chain.rpc.batch(calls)
        except OperationFailed:
            answers = [None] * len(calls)
        still = []
        for outcome, receipt in zip(waiting, answers[: len(waiting)], strict=True):
            if isinstance(receipt, dict):
                _settle(chain, outcome, receipt)
            else:
                still.append(outcome)
        waiting = still
        if on_progress:
            on_progress(total - len(waiting), total)
        if on_wait:
            head = answers[-1]
            on_wait(_wait_status(watched, int(head, 16) if isinstance(head, str) else None, started))
        if not waiting or time.monotonic() >= deadline:
            break
        # a fast chain (a devnet, an L2) often mines within tens of milliseconds: look again soon,
        # then settle at `poll`
        time.sleep(min(poll, 0.02 * 2**rounds))
        rounds += 1
    for outcome in waiting:
        if outcome.status == "pending":
            outcome.error = f"not mined within {timeout:g} s"  # the tx hash is shown beside it
    return list(outcomes)


def _wait_status(watched: Sequence[TxOutcome], head: int | None, started: float) -> WaitStatus:
    blocks = [o.block_number for o in watched if o.block_number is not None]
    latest = max([head or 0, *blocks]) if head is not None or blocks else None
    confirmations = latest - max(blocks) + 1 if blocks and latest is not None else None
    return WaitStatus(len(blocks), len(watched), latest, confirmations, time.monotonic() - started)


def execute(
    chain: Chain,
    signer: Signer,
    requests: Sequence[TxRequest],
    *,
    wait: bool = True,
    timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
    on_wait: WaitProgress | None = None,
) -> list[TxOutcome]:
    """send_all, then (with `wait`) wait_all."""
    outcomes = send_all(chain, signer, requests)
    if wait:
        wait_all(chain, outcomes, timeout=timeout, on_progress=on_progress, on_wait=on_wait)
    return outcomes


def require_success(outcome: TxOutcome, recheck: str | None = None) -> TxOutcome:
    """For single-transaction commands: raise unless it mined successfully.

    `recheck` is how to see later whether a transaction still pending at the deadline went through.
    """
    if outcome.status == "pending":
        then = f"; {recheck}" if recheck else f"; look up tx {outcome.tx_hash} later to check"
        why = outcome.error or "not mined"
        raise OperationFailed(f"{outcome.request.label} was sent but {why} (tx {outcome.tx_hash}){then}")
    if outcome.status != "mined":
        detail = outcome.error or outcome.status
        raise OperationFailed(f"{outcome.request.label} {outcome.status}: {detail}")
    return outcome


def _node_has(chain: Chain, tx_hash: str) -> bool:
    try:
        return chain.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None
    except OperationFailed:
        return False


def _settle(chain: Chain, outcome: TxOutcome, receipt: dict[str, Any]) -> None:
    outcome.receipt = receipt
    outcome.block_number = int(receipt["blockNumber"], 16)
    if receipt.get("contractAddress"):
        outcome.contract_address = str(to_checksum_address(receipt["contractAddress"]))
    if int(receipt.get("status", "0x1"), 16) == 1:
        outcome.status = "mined"
        outcome.error = None
        return
    outcome.status = "reverted"
    outcome.error = _replay_reason(chain, outcome, receipt)


def _replay_reason(chain: Chain, outcome: TxOutcome, receipt: dict[str, Any]) -> str:
    """Re-run the call on the state before its block to recover the revert reason."""
    req = outcome.request
    if not req.to:
        return "reverted"
    block = int(receipt["blockNumber"], 16)
    try:
        chain.call(req.to, req.data, sender=receipt.get("from"), block=block - 1, abi=req.abi)
    except ContractReverted as exc:
        return f"reverted: {exc.reason}"
    except OperationFailed:
        pass
    return "reverted"


def _delivered_before(chain: Chain, tx_hash: str, exc: RpcError) -> bool:
    """Whether a refusal only means an earlier, retried delivery of the same bytes got through.

    The node then answers "already known" (geth), "transaction already imported" (anvil) or, once it
    has mined it, "nonce too low"; the node knowing the hash settles it.
    """
    if any(phrase in exc.rpc_message.lower() for phrase in ALREADY_KNOWN):
        return True
    return _node_has(chain, tx_hash)


def _eth(wei: int) -> str:
    return f"{wei / 10**18:.6f}".rstrip("0").rstrip(".") or "0"
