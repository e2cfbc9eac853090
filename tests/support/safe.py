"""A real Safe (1.4.1) on anvil, and a Transaction Builder batch carried out through it.

The compiled contracts are vendored in `safe_artifacts/` (ABI and creation bytecode of the Safe project's
v1.4.1 release; see its README.md for where they come from). What the Safe web app does
with a batch is done here by hand: the batch's transactions are packed into one MultiSendCallOnly
call, the Safe executes it by DELEGATECALL, and the owners sign the EIP-712 SafeTx hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_typing import Hash32
from eth_utils import keccak, to_checksum_address

from warden.chain.abi import ContractAbi
from warden.chain.artifacts import Artifact
from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, TxRequest, execute, require_success
from warden.hexutil import parse_hex

SAFE_ARTIFACTS = Path(__file__).resolve().parent / "safe_artifacts"
ZERO_ADDRESS = "0x" + "00" * 20
CALL, DELEGATECALL = 0, 1

DOMAIN_TYPEHASH = bytes(keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)"))
SAFE_TX_TYPEHASH = bytes(
    keccak(
        text="SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
        "uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
    )
)


@cache
def safe_artifact(name: str) -> Artifact:
    """A contract compiled by the Safe project, e.g. `Safe_V1_4_1` (the SafeL2 singleton)."""
    data = json.loads((SAFE_ARTIFACTS / f"{name}.json").read_text())
    # only what deploying needs is vendored: the runtime code is whatever the creation code leaves on chain
    return Artifact(name, ContractAbi(data["abi"]), parse_hex(data["bytecode"], f"{name} bytecode"), b"")


@dataclass(frozen=True)
class SafeContracts:
    """The singleton every Safe proxy delegates to, the factory that makes proxies, and MultiSendCallOnly."""

    singleton: str
    factory: str
    multi_send: str


def _creation(artifact: Artifact) -> TxRequest:
    return TxRequest(None, artifact.bytecode, f"deploy {artifact.name}", artifact.abi)


def deploy_safe_contracts(chain: Chain, deployer: Signer) -> SafeContracts:
    names = ("Safe_V1_4_1", "ProxyFactory_V1_4_1", "MultiSendCallOnly_V1_4_1")
    outcomes = execute(chain, deployer, [_creation(safe_artifact(n)) for n in names], timeout=30)
    addresses = []
    for outcome in outcomes:
        require_success(outcome)
        assert outcome.contract_address is not None
        addresses.append(outcome.contract_address)
    singleton, factory, multi_send = addresses
    return SafeContracts(singleton, factory, multi_send)


@dataclass(frozen=True)
class BatchCall:
    """One transaction of a batch: a plain CALL of `data` on `to`."""

    to: str
    value: int
    data: bytes


@dataclass(frozen=True)
class SafeTx:
    """What the owners sign and the Safe executes (no refund: gas fields and gas token are zero)."""

    to: str
    value: int
    data: bytes
    operation: int
    nonce: int

    def args(self) -> list[Any]:
        return [self.to, self.value, self.data, self.operation, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS]


class Safe(Contract):
    """A Safe proxy, called through the singleton's ABI."""

    def __init__(self, chain: Chain, address: str) -> None:
        super().__init__(chain, address, safe_artifact("Safe_V1_4_1").abi)

    def owners(self) -> list[str]:
        return list(self.call("getOwners"))

    def threshold(self) -> int:
        return int(self.call("getThreshold"))

    def nonce(self) -> int:
        return int(self.call("nonce"))

    def tx_hash(self, tx: SafeTx) -> bytes:
        """The EIP-712 hash of a SafeTx, computed here (the Safe computes the same to check signatures)."""
        domain = keccak(
            abi_encode(["bytes32", "uint256", "address"], [DOMAIN_TYPEHASH, self.chain.chain_id, self.address])
        )
        struct = keccak(
            abi_encode(
                ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256", "uint256", "address",
                 "address", "uint256"],
                [SAFE_TX_TYPEHASH, tx.to, tx.value, keccak(tx.data), tx.operation, 0, 0, 0, ZERO_ADDRESS,
                 ZERO_ADDRESS, tx.nonce],
            )
        )  # fmt: skip
        return bytes(keccak(b"\x19\x01" + domain + struct))

    def exec_request(self, tx: SafeTx, signatures: bytes) -> TxRequest:
        return self.request("execTransaction", *tx.args(), signatures, label=f"Safe {self.address} execTransaction")


def create_safe(
    chain: Chain, deployer: Signer, contracts: SafeContracts, owners: Sequence[str], threshold: int, salt: int
) -> Safe:
    """A new Safe proxy set up with `owners` and `threshold` in the factory's createProxyWithNonce."""
    singleton_abi = safe_artifact("Safe_V1_4_1").abi
    setup = singleton_abi.encode_call(
        "setup", list(owners), threshold, ZERO_ADDRESS, b"", ZERO_ADDRESS, ZERO_ADDRESS, 0, ZERO_ADDRESS
    )
    factory = Contract(chain, contracts.factory, safe_artifact("ProxyFactory_V1_4_1").abi)
    (outcome,) = execute(chain, deployer, [factory.request("createProxyWithNonce", contracts.singleton, setup, salt)])
    require_success(outcome)
    assert outcome.receipt is not None
    created = [
        decoded.args["proxy"]
        for log in outcome.receipt["logs"]
        if (decoded := factory.abi.decode_log(log)) is not None and decoded.event == "ProxyCreation"
    ]
    assert len(created) == 1, created
    return Safe(chain, str(created[0]))


def batch_calls(batch: Mapping[str, Any], *, chain_id: int, safe: str) -> list[BatchCall]:
    """The transactions of a Transaction Builder batch, refused (as the Safe app would) for another chain or Safe."""
    if batch["chainId"] != str(chain_id):
        raise ValueError(f"batch is for chain {batch['chainId']}, not {chain_id}")
    created_from = str(batch["meta"]["createdFromSafeAddress"])
    if created_from.lower() != safe.lower():
        raise ValueError(f"batch was made for the Safe {created_from}, not {safe}")
    calls = [
        BatchCall(str(to_checksum_address(t["to"])), int(t["value"]), bytes.fromhex(str(t["data"]).removeprefix("0x")))
        for t in batch["transactions"]
    ]
    if not calls:
        raise ValueError("batch has no transactions")
    return calls


def multi_send_payload(calls: Sequence[BatchCall]) -> bytes:
    """MultiSend's packed list: operation (1 byte) ‖ to (20) ‖ value (32) ‖ data length (32) ‖ data, per call."""
    packed = b""
    for call in calls:
        packed += bytes([CALL]) + bytes.fromhex(call.to[2:])
        packed += call.value.to_bytes(32, "big") + len(call.data).to_bytes(32, "big") + call.data
    return packed


def multi_send_tx(safe: Safe, contracts: SafeContracts, calls: Sequence[BatchCall]) -> SafeTx:
    """The whole batch as one Safe transaction: DELEGATECALL MultiSendCallOnly.multiSend(packed calls)."""
    multi_send = safe_artifact("MultiSendCallOnly_V1_4_1").abi
    data = multi_send.encode_call("multiSend", multi_send_payload(calls))
    return SafeTx(contracts.multi_send, 0, data, DELEGATECALL, safe.nonce())


def signatures(safe: Safe, tx: SafeTx, signers: Sequence[Signer], submitter: Signer) -> bytes:
    """The owners' signatures sorted by owner address, as the Safe checks them.

    An owner that is also the submitter gives the pre-approved form (r = its address, s = 0, v = 1), which
    the Safe accepts from msg.sender without a signature; the others sign the SafeTx hash (v = 27/28).
    """
    digest = safe.tx_hash(tx)
    parts: list[tuple[int, bytes]] = []
    for signer in signers:
        if signer.address == submitter.address:
            part = bytes(12) + bytes.fromhex(signer.address[2:]) + bytes(32) + b"\x01"
        else:
            signed = signer.account.unsafe_sign_hash(Hash32(digest))
            part = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
        parts.append((int(signer.address, 16), part))
    return b"".join(part for _, part in sorted(parts))


def exec_batch_request(
    safe: Safe,
    contracts: SafeContracts,
    batch: Mapping[str, Any],
    signers: Sequence[Signer],
    submitter: Signer,
) -> TxRequest:
    """execTransaction for the whole batch, signed by `signers`, to be sent by `submitter`."""
    calls = batch_calls(batch, chain_id=safe.chain.chain_id, safe=safe.address)
    tx = multi_send_tx(safe, contracts, calls)
    return safe.exec_request(tx, signatures(safe, tx, signers, submitter))


def send_exec(safe: Safe, request: TxRequest, submitter: Signer) -> TxOutcome:
    """Send a signed execTransaction and wait; fails unless it mined and the Safe reported success."""
    (outcome,) = execute(safe.chain, submitter, [request], timeout=30)
    require_success(outcome)
    assert outcome.receipt is not None
    events = [
        decoded.event
        for log in outcome.receipt["logs"]
        if log["address"].lower() == safe.address.lower() and (decoded := safe.abi.decode_log(log)) is not None
    ]
    assert "ExecutionSuccess" in events and "ExecutionFailure" not in events, events
    return outcome


def exec_batch(
    safe: Safe,
    contracts: SafeContracts,
    batch: Mapping[str, Any],
    signers: Sequence[Signer],
    submitter: Signer,
) -> TxOutcome:
    """Sign the whole batch as one Safe transaction and execute it."""
    return send_exec(safe, exec_batch_request(safe, contracts, batch, signers, submitter), submitter)
