"""`warden nodes …`: the machines this workspace may deploy to, from the control plane."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.cli.common import JsonOption, emit, new_app, rows_table, stdout
from warden.cli.options import ControlPlaneOptions, ListOptions, grouped

app = new_app("nodes", "The nodes this workspace may deploy to: current PPID, device id and identity history.")

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

    Example: warden nodes show prod6
    """
    with plane.client() as client:
        node = client.node(name)
    history = node.get("history") or []

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
        if len(history) > 1:
            stdout.print(
                f"the device id changed {len(history) - 1} time(s); apps that allow only an old id refuse this "
                f"node: warden allow-devices add APP {node.get('name')} --wait"
            )

    emit(json_out, node | {"history": history}, human)
