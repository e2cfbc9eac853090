"""`warden plan POLICY` / `warden apply POLICY`: an app's on-chain policy kept in a file, changed by review.

`plan` prints what would change (exit 0 in sync, 4 changes pending); `apply` carries the same plan out
through the one change flow (send, --safe-batch or --calldata), and a second `apply` sends nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from warden.chain.connection import Chain
from warden.chain.inputs import parse_address
from warden.changes.flow import Report
from warden.changes.plan import value_text
from warden.cli.common import JsonOption, emit, fitted_table, note, stdout
from warden.cli.connect import app_address, log_cache
from warden.cli.options import (
    ChainOptions,
    KmsOptions,
    NodesOptions,
    WriteOptions,
    grouped,
)
from warden.errors import EXIT_CHANGES_PENDING
from warden.policy.file import AppPolicy, read_policy
from warden.policy.planning import PolicyPlan, PolicySources, plan_policy

PolicyArgument = Annotated[
    Path, typer.Argument(metavar="POLICY", help="Policy file (TOML, or JSON of the same shape); see docs.")
]
PruneFlag = Annotated[bool, typer.Option("--prune", help="Also remove what is on chain but not named in the policy.")]
MarkdownFlag = Annotated[
    bool, typer.Option("--markdown", help="Print the plan as Markdown (for a pull-request comment).")
]


def _resolve_app(app: AppPolicy) -> str:
    """An address or app_ id as written; a name or a CVM through the control plane."""
    if app.reference_kind in ("address", "app_id"):
        return parse_address(app.reference, f"[apps.{app.name}] {app.reference_kind}")
    return app_address(app.reference)


def _plan(
    policy_path: Path, network: ChainOptions, kms: KmsOptions, nodes: NodesOptions, prune: bool
) -> tuple[PolicyPlan, Chain]:
    policy = read_policy(policy_path)  # a malformed policy is refused before anything is read from the chain
    inventory, source = nodes.inventory()
    chain = network.connect()
    sources = PolicySources(
        inventory=inventory,
        inventory_source=source,
        resolve_app=_resolve_app,
        kms_address=lambda text: KmsOptions(text or kms.kms, kms.profile).address(),
        cache=log_cache(),
    )
    return plan_policy(policy, chain, sources, prune=prune), chain


@grouped
def plan_command(
    policy: PolicyArgument,
    network: ChainOptions,
    kms: KmsOptions,
    nodes: NodesOptions,
    prune: PruneFlag = False,
    markdown: MarkdownFlag = False,
    json_out: JsonOption = False,
) -> None:
    """Show what `apply` would change on chain to match POLICY; exit 0 in sync, 4 changes pending.

    \b
    Example: warden plan policy.toml --nodes-file nodes.json --json
    """
    planned, _ = _plan(policy, network, kms, nodes, prune)
    if markdown and not json_out:
        stdout.print(markdown_plan(planned), markup=False)
    else:
        emit(json_out, planned.as_json(), lambda: print_plan(planned))
    if not planned.in_sync:
        raise typer.Exit(EXIT_CHANGES_PENDING)


@grouped
def apply_command(
    policy: PolicyArgument, write: WriteOptions, kms: KmsOptions, nodes: NodesOptions, prune: PruneFlag = False
) -> None:
    """Make the chain match POLICY: the changes `plan` shows, sent together (or as a Safe batch / calldata).

    \b
    Example: warden apply policy.toml --wait
    """
    writer = write.writer()
    planned, chain = _plan(policy, write.network, kms, nodes, prune)
    if not writer.json_out and not planned.in_sync:
        print_plan(planned)
    plan = planned.plan
    report = writer.carry_out(chain, plan, what=f"apply {policy.name}")
    data: dict[str, Any] = {"policy": str(policy), "chain_id": planned.chain_id, "in_sync": planned.in_sync,
                            "results": _rows(report)}  # fmt: skip
    writer.report(report, data, recheck=f"warden plan {policy}", human=lambda: _print_results(report))


def _rows(report: Report) -> list[dict[str, Any]]:
    by_change = {id(r.change): r for r in report.results}
    rows = []
    for change in report.plan.changes:
        result = by_change.get(id(change))
        row = change.as_json() | {"status": result.status if result else "planned", "tx": result.tx if result else None}
        if result and result.error:
            row["error"] = result.error
        rows.append(row)
    return rows


def _print_results(report: Report) -> None:
    if not report.results:
        stdout.print("in sync: nothing to change")
        return
    rows = []
    for row, result in zip(_rows(report), report.results, strict=True):
        status = row["status"] + (f" ({row['error']})" if row.get("error") else "")
        rows.append((row["change"], row["contract"], result.change.describe(), status, row["tx"] or "-"))
    stdout.print(fitted_table(("change", "contract", "value", "status", "tx"), rows))


def print_plan(planned: PolicyPlan) -> None:
    """The plan for people: per app, each change with its node name or source, and what the policy leaves."""
    for section in planned.sections:
        changes = section.plan.changes
        head = "in sync" if not changes else f"{len(changes)} change(s)"
        stdout.print(f"{section.name}  {section.contract}  {head}", markup=False)
        for change in changes:
            sign = {"add": "+", "remove": "-", "set": "~"}[change.action]
            stdout.print(f"  {sign} {change.title()}  ({change.why})", markup=False)
        for entry in section.plan.unchanged:
            if entry.state == "not-named":
                stdout.print(f"  ? {entry.describe()} is on chain but not in the policy (kept; --prune removes it)",
                             markup=False)  # fmt: skip
        for warning in section.plan.notes:
            note(f"warning: {warning}")
    summary = planned.summary()
    stdout.print(f"plan: {summary['add']} to add, {summary['remove']} to remove, {summary['set']} to set"
                 + (f", {summary['not_named']} on chain not in the policy" if summary["not_named"] else ""),
                 markup=False)  # fmt: skip


def markdown_plan(planned: PolicyPlan) -> str:
    """A pull-request comment: a summary line and one table per section that changes."""
    summary = planned.summary()
    lines = [f"### warden plan: `{planned.policy.path.name}` on chain {planned.chain_id}", ""]
    if planned.in_sync:
        lines.append("In sync: nothing to change.")
    else:
        lines.append(f"**{summary['add']}** to add, **{summary['remove']}** to remove, **{summary['set']}** to set.")
    for section in planned.sections:
        lines += ["", f"#### {section.name} (`{section.contract}`)", ""]
        rows = [(c.kind, c.value, c.label, c.why) for c in section.plan.changes]
        rows += [(f"not in policy ({e.spec.kind})", e.value, e.label, "kept (--prune removes it)")
                 for e in section.plan.unchanged if e.state == "not-named"]  # fmt: skip
        if not rows:
            lines.append("in sync")
            continue
        lines += ["| change | value | name | why |", "|---|---|---|---|"]
        lines += [f"| {k} | `{value_text(v)}` | {label or ''} | {why} |" for k, v, label, why in rows]
    return "\n".join(lines)
