"""`warden nodes …`: the machines this workspace may deploy to, from the control plane."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.cli.common import JsonOption, emit, new_app, rows_table, stdout
from warden.cli.options import ControlPlaneOptions, ListOptions, grouped

app = new_app("nodes", "The nodes this workspace may deploy to: current PPID, device id and identity history.")
app.info.epilog = "\b\nExample: warden nodes show prod6"

NodeArgument = Annotated[str, typer.Argument(metavar="NAME", help="Node name, as `warden nodes ls` shows it.")]


def when(seconds: Any) -> str:
    """Unix seconds as UTC time for tables; `-` when unknown."""
    if not isinstance(seconds, int | float):
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def shown(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


@app.command("ls")
@grouped
def ls_command(listing: ListOptions) -> None:
    """One row per node, by name: name, region, current device id (sha256 of the PPID), PPID, status.

    \b
    Example: warden nodes ls --json
    """
    first = listing.first()
    with listing.plane.client() as client:
        nodes = client.nodes(limit=first)

    columns = ("name", "region", "device_id", "ppid", "status")
    rows = [[shown(node.get(k)) for k in columns] for node in nodes]
    empty = "no node: this workspace may not deploy to any node yet"
    emit(listing.json_out, {"nodes": nodes}, rows_table(columns, rows, empty))


app.command("list", hidden=True)(ls_command)


@app.command("show")
@grouped
def show_command(name: NodeArgument, plane: ControlPlaneOptions, json_out: JsonOption = False) -> None:
    """A node and every device identity it presented (old id → new id, first and last seen).

    A new id after a BIOS or microcode update strands the apps that allow only the old one; the
    history says when it changed.

    \b
    Example: warden nodes show prod6
    """
    with plane.client() as client:
        node = client.node(name)
        history = node.get("history") or []
        changed = len(history) > 1 and not json_out  # the apps it strands are named in the human output
        placed = [c for c in client.cvms() if c.get("node") == node.get("name")] if changed else []

    def human() -> None:
        for key in ("name", "region", "status", "device_id", "ppid", "tee_version", "tcb_status"):
            stdout.print(f"{key:<16} {shown(node.get(key))}", markup=False)
        stdout.print(f"{'last attested':<16} {when(node.get('last_attested_at'))}", markup=False)
        if not history:
            stdout.print("no device identity recorded yet: the node has not posted a quote")
            return
        table = Table("old device_id", "", "new device_id", "first seen (UTC)", "last seen (UTC)",
                      title="device identity history", title_justify="left")  # fmt: skip
        for row in history:
            table.add_row(shown(row.get("old_device_id")), "→", shown(row.get("device_id")),
                          when(row.get("first_seen")), when(row.get("last_seen")))  # fmt: skip
        stdout.print(table)
        for line in _affected_apps(str(node.get("name")), placed, changes=len(history) - 1):
            stdout.print(line, markup=False)

    emit(json_out, node | {"history": history}, human)


def app_label(cvm: Mapping[str, Any]) -> str:
    """How a CVM's app is called in a sentence: its name, else its address."""
    return str(cvm.get("app_name") or cvm["app"])


def refused_at_next_boot(cvms: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per (node, app) whose CVMs the chain will refuse at their next boot, with the fix."""
    stranded: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cvm in cvms:
        if cvm.get("device_allowed") is False:
            stranded.setdefault((str(cvm["node"]), str(cvm["app"])), []).append(cvm)
    lines = []
    for (node, app), group in stranded.items():
        names = ", ".join(str(c["name"]) for c in group)
        device = shown(group[0].get("device_id"))
        lines.append(
            f"refused at next boot: {names} — {node}'s device {device} is not allowed by {app_label(group[0])}; "
            f"fix: warden allow-devices add {app} {node} --wait"
        )
    return lines


def _affected_apps(node: str, cvms: list[dict[str, Any]], *, changes: int) -> list[str]:
    """After a device id change: the apps with CVMs on the node, each with the command that allows it."""
    if not changes:
        return []
    lines = [f"the device id changed {changes} time(s); an app that allows only an old id refuses {node}"]
    lines += refused_at_next_boot(cvms)
    unchecked: dict[str, str] = {}
    for cvm in cvms:
        if cvm.get("device_allowed") is None:
            unchecked.setdefault(str(cvm["app"]), app_label(cvm))
    if unchecked:
        lines.append(f"apps with CVMs on {node} (not checked against the chain yet); if one refuses it:")
        lines += [f"  {label}: warden allow-devices add {app} {node} --wait" for app, label in unchecked.items()]
    if not cvms:
        lines.append(f"no CVM runs on {node} now, so no app is affected yet")
    elif len(lines) == 1:
        lines.append(f"every app with a CVM on {node} allowed its current id when it changed")
    return lines
