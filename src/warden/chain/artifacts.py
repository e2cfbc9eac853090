"""Compiled contracts (ABI + bytecode) committed with the package, so no Node is needed at run time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from warden.chain.abi import ContractAbi
from warden.hexutil import parse_hex


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: ContractAbi
    bytecode: bytes
    deployed_bytecode: bytes


def artifact_from_json(data: dict[str, Any]) -> Artifact:
    return Artifact(
        name=str(data["contractName"]),
        abi=ContractAbi(data["abi"]),
        bytecode=parse_hex(str(data["bytecode"]), "bytecode"),
        deployed_bytecode=parse_hex(str(data["deployedBytecode"]), "deployed bytecode"),
    )


@cache
def load_artifact(name: str) -> Artifact:
    """`DstackApp`, `DstackKms` or `ERC1967Proxy`."""
    text = resources.files("warden.chain").joinpath("artifacts", f"{name}.json").read_text()
    return artifact_from_json(json.loads(text))


def load_artifact_file(path: Path) -> Artifact:
    return artifact_from_json(json.loads(path.read_text()))
