"""The CLI side of the one change flow (warden.changes): carry a plan out as the options say, with a live line
while waiting, and print what happened: a table, calldata, or where the Safe batch was written."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich.live import Live
from rich.text import Text

from warden.chain.connection import Chain
from warden.chain.contract import Contract
from warden.chain.tx import WaitProgress, WaitStatus
from warden.changes.flow import Delivery, Report, carry_out
from warden.changes.plan import JSON_KEYS, Plan
from warden.cli.common import emit, fitted_table, note, stdout
from warden.cli.options import SignerOptions
from warden.errors import OperationFailed


def wait_line(status: WaitStatus) -> str:
    """The live line while waiting: `waiting for receipts: 1/2 mined · block 1234 · 1 confirmation · 3.2 s`."""
    parts = [f"waiting for receipts: {status.mined}/{status.total} mined"]
    if status.block is not None:
        parts.append(f"block {status.block}")
    if status.confirmations is not None:
        parts.append(f"{status.confirmations} confirmation{'s' if status.confirmations != 1 else ''}")
    parts.append(f"{status.elapsed:.1f} s")
    return " · ".join(parts)


@contextmanager
def receipt_progress(show: bool) -> Iterator[WaitProgress | None]:
    """A live line on stderr while waiting for receipts, only when stderr is a terminal (a log file gets none)."""
    from warden.cli.common import stderr

    if not (show and stderr.is_terminal):
        yield None
        return
    with Live(Text("waiting for receipts"), console=stderr, transient=True, auto_refresh=False) as live:

        def update(status: WaitStatus) -> None:
            live.update(Text(wait_line(status)), refresh=True)

        yield update


@dataclass(frozen=True)
class Writer:
    """A write command's options, resolved: how to deliver, who signs, JSON or not."""

    delivery: Delivery
    signer: SignerOptions
    json_out: bool

    def carry_out(self, chain: Chain, plan: Plan, *, what: str) -> Report:
        """Warn, then send (asking for the signer only now) or write the plan for its owner."""
        for warning in plan.notes:
            note(f"warning: {warning}")
        if not plan.changes:
            written = "; no batch written" if self.delivery.how == "safe-batch" else ""
            note(f"nothing to change: {what} is already as asked{written}")
        show = self.delivery.wait and bool(plan.changes)
        with receipt_progress(show) as progress:
            return carry_out(plan, self.delivery, lambda: self.signer.signer(chain), batch_name=f"warden: {what}",
                             on_wait=progress)  # fmt: skip

    def change(self, plan: Plan, contract: Contract, *, what: str, recheck: str) -> None:
        """Carry the plan out and print one row per entry (`{"app" | "kms", "results"}` under --json)."""
        report = self.carry_out(contract.chain, plan, what=f"{what} on {contract.address}")
        data: dict[str, Any] = {contract.role.lower(): contract.address, "results": report.rows()}
        kind = plan.entries[0].spec.kind if plan.entries else "device"
        self.report(report, data, recheck=recheck, human=results_table(data["results"], kind))

    def report(self, report: Report, data: dict[str, Any], *, recheck: str, human: Callable[[], None]) -> None:
        """Print the result (offline: where the batch went, or the calldata) and exit 1 on failures."""
        offline = report.offline
        if offline is not None:
            if self.delivery.how == "safe-batch":
                data["safe_batch"] = str(self.delivery.safe_batch)
                data["transactions"] = len(offline.calls)
                note(f"wrote {len(offline.calls)} change(s) to {self.delivery.safe_batch}: open the Safe "
                     f"{offline.owner} in the Safe app, Transaction Builder → drag and drop the file, then sign "
                     "and execute")  # fmt: skip
            else:
                data["calls"] = offline.calls
            if self.json_out:
                emit(True, data, human)
            elif "calls" in data:
                for call in data["calls"]:
                    stdout.print(f"to {call['to']}  data {call['data']}  # {call['call']}", markup=False)
            return
        emit(self.json_out, data, human)
        if not self.delivery.wait and report.pending:
            note(f"sent; check with: {recheck} (or rerun with --wait)")
        raise_if_unmined(data.get("results", [data]), wait=self.delivery.wait, timeout=self.delivery.timeout,
                         recheck=recheck)  # fmt: skip
        if report.failed:
            raise typer.Exit(1)


def results_table(rows: Sequence[Mapping[str, Any]], kind: str) -> Callable[[], None]:
    """The human form of a report's rows: value, its label, status (with the error), tx."""
    key, label_key = JSON_KEYS[kind]

    def human() -> None:
        cells = [
            (
                str(row[key]),
                row.get(label_key) or "-",
                row["status"] + (f" ({row['error']})" if row.get("error") else ""),
                row["tx"] or "-",
            )
            for row in rows
        ]
        stdout.print(fitted_table((key, label_key, "status", "tx"), cells))  # fmt: skip

    return human


def raise_if_unmined(rows: Sequence[Mapping[str, Any]], *, wait: bool, timeout: float, recheck: str) -> None:
    """After --wait, transactions still unmined at the deadline are a failure (exit 1), not a success.

    Called once the results (status `pending`, with their tx hashes) are printed; `recheck` is the
    command that shows later whether they went through.
    """
    txs = [str(r.get("tx")) for r in rows if r.get("status") == "pending" and r.get("tx")]
    if wait and txs:
        raise OperationFailed(
            f"{len(txs)} transaction(s) sent but not mined within {timeout:g} s (tx {', '.join(txs)}); "
            f"rerun `{recheck}` to check"
        )
