"""`warden compose-hashes …`: which exact manifests an app allows, read from and written to its DstackApp."""

from __future__ import annotations

from typing import Annotated

import typer

from warden.chain.inputs import hex0x
from warden.changes.asked import compose_hash_changes
from warden.cli.common import AppArgument, JsonOption, emit, new_app, rows_table
from warden.cli.connect import log_cache
from warden.cli.options import ChainOptions, WriteOptions, add_and_remove, grouped
from warden.fleet.compose_hashes import compose_hashes_of, list_compose_hashes

app = new_app("compose-hashes", "The app-compose manifests (compose hashes) an app may boot, on its DstackApp.")
app.info.epilog = "\b\nExample: warden compose-hashes list shared-key-demo"

ItemsArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="HASH|FILE...", help="Compose hashes, app-compose.json files, or `compose matrix --json` output."
    ),
]


@app.command("list")
@grouped
def list_command(app_text: AppArgument, network: ChainOptions, json_out: JsonOption = False) -> None:
    """Every compose hash the app allows now, from its events, confirmed with allowedComposeHashes.

    \b
    Example: warden compose-hashes list shared-key-demo --json
    """
    contract = network.app(app_text)
    members, head = list_compose_hashes(contract, log_cache())
    data = {
        "app": contract.address,
        "chain_id": contract.chain.chain_id,
        "block": head,
        "compose_hashes": [{"compose_hash": hex0x(m.id), "block": m.block, "tx": m.tx} for m in members],
    }

    rows = [(hex0x(m.id), str(m.block)) for m in members]
    empty = f"no compose hash is allowed on {contract.address}: nothing can boot"
    emit(json_out, data, rows_table(("compose_hash", "added in block"), rows, empty))


def _change_hashes(add: bool, app_text: AppArgument, items: ItemsArgument, write: WriteOptions) -> None:
    found = compose_hashes_of(items)  # bad hex or an unreadable file: refused before any network call
    writer = write.writer()
    contract = write.network.app(app_text)
    writer.change(compose_hash_changes(contract, found, add=add), contract, recheck=f"warden compose-hashes list "
                  f"{contract.address}", what=f"{'add' if add else 'remove'} compose hashes")  # fmt: skip


add_and_remove(
    app,
    _change_hashes,
    """Allow compose hashes (one addComposeHash each, consecutive nonces; allowed ones are skipped).

    A file is hashed as the exact bytes the CVM will measure; a `warden compose matrix --json` output
    adds every platform's hash of one release in one batch.

    \b
    Example: warden compose-hashes add shared-key-demo matrix.json --wait
    """,
    """Disallow compose hashes (not-allowed ones are skipped).

    \b
    Example: warden compose-hashes remove shared-key-demo --wait \\
      0xdb669af634b75c7f298400f3b6c2aa8ba54998bac83e23d10ab4eaadc4b50ccf
    """,
)
