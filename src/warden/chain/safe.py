"""Changes for a contract owner that is not a key (a Safe, a timelock): a batch file or raw calldata.

The batch file is the JSON the Safe web app's Transaction Builder imports ("Drag and drop a JSON
file"); all changes land in one Safe transaction (a MultiSend), signed by the Safe's owners.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_utils import keccak

from warden.chain.tx import TxRequest
from warden.errors import BadInput

TX_BUILDER_VERSION = "1.18.0"


def safe_batch(
    requests: Sequence[TxRequest],
    *,
    chain_id: int,
    safe: str,
    name: str,
    description: str = "",
    created_at_ms: int | None = None,
) -> dict[str, Any]:
    """A Transaction Builder batch with raw calldata per transaction and the builder's checksum."""
    batch: dict[str, Any] = {
        "version": "1.0",
        "chainId": str(chain_id),
        "createdAt": created_at_ms if created_at_ms is not None else int(time.time() * 1000),
        "meta": {
            "name": name,
            "description": description,
            "txBuilderVersion": TX_BUILDER_VERSION,
            "createdFromSafeAddress": safe,
            "createdFromOwnerAddress": "",
        },
        "transactions": [
            {
                "to": r.to,
                "value": str(r.value),
                "data": "0x" + r.data.hex(),
                "contractMethod": None,
                "contractInputsValues": None,
            }
            for r in requests
        ],
    }
    batch["meta"]["checksum"] = batch_checksum(batch)
    return batch


def batch_checksum(batch: dict[str, Any]) -> str:
    """The Transaction Builder's integrity check: keccak256 of its key-sorted serialisation with the
    batch name left out (so renaming a batch in the app does not invalidate it)."""
    unnamed = dict(batch, meta=dict(batch["meta"], name=None))
    unnamed["meta"].pop("checksum", None)
    return "0x" + bytes(keccak(text=_serialise(unnamed))).hex()


def _serialise(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_serialise(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value)
        return "{" + _compact(keys) + "".join(_serialise(value[k]) + "," for k in keys) + "}"
    return _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def write_safe_batch(path: Path, batch: dict[str, Any]) -> None:
    if path.exists() and path.is_dir():
        raise BadInput(f"--safe-batch {path} is a directory")
    try:
        path.write_text(json.dumps(batch, indent=2) + "\n")
    except OSError as exc:
        raise BadInput(f"cannot write --safe-batch {path}: {exc.strerror}") from None


def calldata_lines(requests: Sequence[TxRequest]) -> list[dict[str, str]]:
    """Target and calldata per change, for any other governance path (a timelock, a DAO proposal)."""
    return [{"to": str(r.to), "data": "0x" + r.data.hex(), "call": r.label} for r in requests]
