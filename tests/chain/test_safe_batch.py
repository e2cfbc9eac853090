"""Safe Transaction Builder batch files: the builder's checksum, and the batches warden writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils import function_signature_to_4byte_selector

from tests.support.chain import deploy_app
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.safe import batch_checksum, calldata_lines, safe_batch, write_safe_batch
from warden.chain.signer import Signer
from warden.errors import BadInput

# exported by the Safe web app's Transaction Builder (v1.18.2): one USDC approve on mainnet
EXPORTED = """{"version":"1.0","chainId":"1","createdAt":1761326849944,"meta":{"name":"Transactions Batch",
"description":"","txBuilderVersion":"1.18.2","createdFromSafeAddress":"0xA77DE01e157f9f57C7c4A326eeE9C4874D0598b6",
"createdFromOwnerAddress":"","checksum":"0x8b5032f716845c8b08bab3d63dbd9ba92e056f3557793cd041e59b84e16aa989"},
"transactions":[{"to":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48","value":"0","data":null,"contractMethod":{
"inputs":[{"internalType":"address","name":"spender","type":"address"},{"internalType":"uint256","name":"value",
"type":"uint256"}],"name":"approve","payable":false},"contractInputsValues":{
"spender":"0x474e5Ded6b5D078163BFB8F6dBa355C3aA5478C8","value":"100000000000"}}]}"""
EXPORTED_CHECKSUM = "0x8b5032f716845c8b08bab3d63dbd9ba92e056f3557793cd041e59b84e16aa989"

A, B = bytes([0xA1]) * 32, bytes([0xB2]) * 32
SAFE = "0xA77DE01e157f9f57C7c4A326eeE9C4874D0598b6"


def exported() -> dict[str, Any]:
    batch: dict[str, Any] = json.loads(EXPORTED)
    return batch


def test_checksum_reproduces_a_real_transaction_builder_export() -> None:
    batch = exported()
    assert batch["meta"]["checksum"] == EXPORTED_CHECKSUM
    assert batch_checksum(batch) == EXPORTED_CHECKSUM
    without = copy.deepcopy(batch)
    del without["meta"]["checksum"]
    assert batch_checksum(without) == EXPORTED_CHECKSUM  # the checksum field itself is not hashed


def test_renaming_a_batch_keeps_its_checksum() -> None:
    batch = exported()
    batch["meta"]["name"] = "warden: add devices — prod"
    assert batch_checksum(batch) == EXPORTED_CHECKSUM


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("transactions", 0, "contractInputsValues", "value"), "100000000001"),
        (("transactions", 0, "to"), "0x474e5Ded6b5D078163BFB8F6dBa355C3aA5478C8"),
        (("meta", "description"), "approve"),
        (("meta", "createdFromSafeAddress"), "0x474e5Ded6b5D078163BFB8F6dBa355C3aA5478C8"),
        (("chainId",), "8453"),
    ],
)
def test_changing_anything_else_changes_the_checksum(path: tuple[str | int, ...], value: str) -> None:
    batch = exported()
    node: Any = batch
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert batch_checksum(batch) != EXPORTED_CHECKSUM


def test_adding_a_transaction_changes_the_checksum() -> None:
    batch = exported()
    batch["transactions"].append(copy.deepcopy(batch["transactions"][0]))
    assert batch_checksum(batch) != EXPORTED_CHECKSUM


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


def test_a_batch_of_device_changes_is_one_file_with_every_call(app: AppAuth, tmp_path: Path) -> None:
    requests = [app.add_device(A), app.add_device(B), app.remove_device(A), app.set_allow_any_device(False)]
    batch = safe_batch(requests, chain_id=31337, safe=SAFE, name="warden: devices", created_at_ms=1761326849944)
    assert (batch["version"], batch["chainId"], batch["createdAt"]) == ("1.0", "31337", 1761326849944)
    assert batch["meta"]["createdFromSafeAddress"] == SAFE
    assert batch["meta"]["checksum"] == batch_checksum(batch)

    def call(signature: str, argument: bytes) -> str:
        return "0x" + (function_signature_to_4byte_selector(signature) + argument).hex()

    assert [(t["to"], t["value"], t["data"]) for t in batch["transactions"]] == [
        (app.address, "0", call("addDevice(bytes32)", A)),
        (app.address, "0", call("addDevice(bytes32)", B)),
        (app.address, "0", call("removeDevice(bytes32)", A)),
        (app.address, "0", call("setAllowAnyDevice(bool)", bytes(32))),
    ]

    path = tmp_path / "batch.json"
    write_safe_batch(path, batch)
    assert json.loads(path.read_text()) == batch
    assert batch_checksum(json.loads(path.read_text())) == batch["meta"]["checksum"]

    lines = calldata_lines(requests[:1])
    assert lines == [{"to": app.address, "data": call("addDevice(bytes32)", A), "call": "addDevice 0x" + A.hex()}]


def test_a_batch_cannot_be_written_over_a_directory(app: AppAuth, tmp_path: Path) -> None:
    batch = safe_batch([app.add_device(A)], chain_id=31337, safe=SAFE, name="x")
    with pytest.raises(BadInput, match="is a directory"):
        write_safe_batch(tmp_path, batch)
    with pytest.raises(BadInput, match="cannot write --safe-batch"):
        write_safe_batch(tmp_path / "missing-dir" / "batch.json", batch)
