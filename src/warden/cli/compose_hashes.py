"""`warden compose-hashes …`: which exact manifests an app allows, read from and written to its DstackApp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.chain.allowlist import plan, reject_duplicates
from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x
from warden.cli.changes import carry_out, raise_if_unmined
from warden.cli.common import (
    AppArgument,
    ChainIdOption,
    ChainOption,
    JsonOption,
    KeystoreOption,
    PrivateKeyOption,
    RpcUrlOption,
    TimeoutOption,
    WaitOption,
    emit,
    new_app,
    stdout,
)
from warden.cli.connect import app_address, connect, log_cache
from warden.errors import BadInput
from warden.fleet.compose_hashes import (
    compose_hash_spec,
    hashes_of_document,
    list_compose_hashes,
    resolve_compose_hash_text,
)

app = new_app("compose-hashes", "The app-compose manifests (compose hashes) an app may boot, on its DstackApp.")

ItemsArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="HASH|FILE...", help="Compose hashes, app-compose.json files, or `compose matrix --json` output."
    ),
]
SafeBatchOption = Annotated[
    Path | None,
    typer.Option("--safe-batch", metavar="FILE", help="Owner is a Safe: write one Transaction Builder batch instead."),
]
CalldataFlag = Annotated[bool, typer.Option("--calldata", help="Print target + calldata per change; send nothing.")]


def _open(app_text: str, rpc_url: str | None, chain_id: int | None, chain: str | None) -> AppAuth:
    address = app_address(app_text)
    return AppAuth.open(connect(rpc_url, chain_id, chain), address)


def resolve_items(items: list[str]) -> list[tuple[bytes, str]]:
    """Hex hashes as typed; files hashed as manifests (their exact bytes) or read as matrix output."""
    found: list[tuple[bytes, str]] = []
    for item in items:
        value = resolve_compose_hash_text(item)
        if value is not None:
            found.append((value, item))
            continue
        path = Path(item)
        if not path.is_file():
            raise BadInput(f"{item!r} is neither a 32-byte compose hash nor a readable file")
        found.extend(hashes_of_document(path.read_bytes(), item))
    reject_duplicates([h for h, _ in found], "compose hash")
    return found


@app.command("list")
def list_command(
    app_text: AppArgument,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every compose hash the app allows now, from its events, confirmed with allowedComposeHashes.

    Example: warden compose-hashes list 0x7553…14F1 --json
    """
    contract = _open(app_text, rpc_url, chain_id, chain)
    members, head = list_compose_hashes(contract, log_cache())
    data = {
        "app": contract.address,
        "chain_id": contract.chain.chain_id,
        "block": head,
        "compose_hashes": [{"compose_hash": hex0x(m.id), "block": m.block, "tx": m.tx} for m in members],
    }

    def human() -> None:
        if not members:
            stdout.print(f"no compose hash is allowed on {contract.address}: nothing can boot")
            return
        table = Table("compose_hash", "added in block")
        for m in members:
            table.add_row(hex0x(m.id), str(m.block))
        stdout.print(table)

    emit(json_out, data, human)


def _change(add: bool, app_text: str, items: list[str], wait: bool, timeout: float, safe_batch_file: Path | None,
            calldata: bool, rpc_url: str | None, chain: str | None, chain_id: int | None, private_key: str | None,
            keystore: str | None, json_out: bool) -> None:  # fmt: skip
    found = resolve_items(items)
    contract = _open(app_text, rpc_url, chain_id, chain)
    spec = compose_hash_spec(contract)
    planned = plan(spec, [h for h, _ in found], add=add)
    sources = {h: s for h, s in found}
    data: dict[str, Any] = {"app": contract.address}
    results, _ = carry_out(
        contract, spec, planned, noun="compose hash", data=data, wait=wait, timeout=timeout,
        safe_batch_file=safe_batch_file, calldata=calldata, private_key=private_key, keystore=keystore,
        json_out=json_out,
    )  # fmt: skip
    data["results"] = [r.as_json("compose_hash") | {"source": sources.get(r.id)} for r in results]

    def human() -> None:
        table = Table("compose_hash", "from", "status", "tx")
        for row in data["results"]:
            table.add_row(row["compose_hash"], row["source"], row["status"], row["tx"] or "-")
        stdout.print(table)

    emit(json_out, data, human)
    raise_if_unmined(
        data["results"], wait=wait, timeout=timeout, recheck=f"warden compose-hashes list {contract.address}"
    )
    if any(r["status"] == "failed" for r in data["results"]):
        raise typer.Exit(1)


@app.command("add")
def add_command(
    app_text: AppArgument,
    items: ItemsArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
    safe_batch_file: SafeBatchOption = None,
    calldata: CalldataFlag = False,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    private_key: PrivateKeyOption = None,
    keystore: KeystoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Allow compose hashes (one addComposeHash each, consecutive nonces; allowed ones are skipped).

    A file is hashed as the exact bytes the CVM will measure; a `warden compose matrix --json` output
    adds every platform's hash of one release in one batch.

    Example: warden compose-hashes add 0x7553…14F1 matrix.json --wait
    """
    _change(True, app_text, items, wait, timeout, safe_batch_file, calldata, rpc_url, chain, chain_id, private_key,
            keystore, json_out)  # fmt: skip


@app.command("remove")
def remove_command(
    app_text: AppArgument,
    items: ItemsArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
    safe_batch_file: SafeBatchOption = None,
    calldata: CalldataFlag = False,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    private_key: PrivateKeyOption = None,
    keystore: KeystoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Disallow compose hashes (not-allowed ones are skipped).

    Example: warden compose-hashes remove 0x7553…14F1 0x46e2…aa51 --wait
    """
    _change(False, app_text, items, wait, timeout, safe_batch_file, calldata, rpc_url, chain, chain_id, private_key,
            keystore, json_out)  # fmt: skip
