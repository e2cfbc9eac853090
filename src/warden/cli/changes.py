"""Sending allowlist changes: consecutive-nonce transactions with a progress bar while waiting, or, for an
owner that is not a key, a Safe batch file or calldata."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from warden.chain.allowlist import AllowlistSpec, ItemResult, Plan, apply
from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.safe import calldata_lines, safe_batch, write_safe_batch
from warden.chain.tx import TxRequest, check_owner
from warden.cli.common import note, stderr, stdout
from warden.cli.connect import signer_for
from warden.errors import BadInput, OperationFailed


@contextmanager
def receipt_progress(show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while waiting for receipts (nothing when not waiting)."""
    if not show:
        yield None
        return
    columns = (TextColumn("waiting for receipts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("receipts", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def emit_offline(
    chain: Chain,
    owner: str,
    requests: list[TxRequest],
    safe_batch_file: Path | None,
    data: dict[str, Any],
    what: str,
    json_out: bool,
) -> None:
    """The changes for an owner that is not a key: a Safe batch file, or target + calldata per change."""
    if safe_batch_file is not None:
        batch = safe_batch(requests, chain_id=chain.chain_id, safe=owner, name=f"warden: {what} on {data['app']}")
        write_safe_batch(safe_batch_file, batch)
        data["safe_batch"] = str(safe_batch_file)
        data["transactions"] = len(requests)
        note(
            f"wrote {len(requests)} change(s) to {safe_batch_file}: open the Safe {owner} in the Safe app, "
            "Transaction Builder → drag and drop the file, then sign and execute"
        )
    else:
        data["calls"] = calldata_lines(requests)
        if not json_out:
            for call in data["calls"]:
                stdout.print(f"to {call['to']}  data {call['data']}  # {call['call']}", markup=False)


def carry_out(
    contract: Contract,
    spec: AllowlistSpec,
    planned: Plan,
    *,
    noun: str,
    data: dict[str, Any],
    wait: bool,
    timeout: float,
    safe_batch_file: Path | None,
    calldata: bool,
    private_key: str | None,
    keystore: str | None,
    json_out: bool,
) -> tuple[list[ItemResult], bool]:
    """Send a plan's changes, or (for an owner that is not a key) write them as a Safe batch or calldata.

    Returns the per-item results and whether they were written instead of sent.
    """
    if safe_batch_file and calldata:
        raise BadInput("choose one of --safe-batch and --calldata")
    if safe_batch_file or calldata:
        requests = planned.requests(spec)
        verb = "add" if planned.add else "remove"
        if requests:
            emit_offline(contract.chain, contract.call("owner"), requests, safe_batch_file, data, f"{verb} {noun}s",
                         json_out)  # fmt: skip
        else:  # an empty batch would only be a Safe transaction that does nothing
            written = "; no batch written" if safe_batch_file else ""
            state = "allowed" if planned.add else "not allowed"
            note(f"nothing to change: every {noun} given is already {state}{written}")
        return planned.results, True
    signer = signer_for(contract.chain, private_key, keystore)
    check_owner(str(contract.call("owner")), signer, f"app {contract.address}", contract.chain)
    with receipt_progress(wait and bool(planned.todo) and not json_out) as progress:
        results = apply(contract.chain, signer, spec, planned, wait=wait, timeout=timeout, on_progress=progress)
    return results, False


def raise_if_unmined(rows: Sequence[Mapping[str, Any]], *, wait: bool, timeout: float, recheck: str) -> None:
    """After --wait, transactions still unmined at the deadline are a failure (exit 1), not a success.

    Called once the results (status `pending`, with their tx hashes) are printed; `recheck` is the
    command that shows later whether they went through.
    """
    txs = [str(r.get("tx")) for r in rows if r.get("status") == "pending"]
    if wait and txs:
        raise OperationFailed(
            f"{len(txs)} transaction(s) sent but not mined within {timeout:g} s (tx {', '.join(txs)}); "
            f"rerun `{recheck}` to check"
        )
