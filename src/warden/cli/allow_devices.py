"""`warden allow-devices …`: the device allowlist of a DstackApp, read from and written to the chain."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x, parse_bytes32
from warden.changes.asked import allow_any_device_change, device_changes
from warden.cli.changes import Writer
from warden.cli.common import AppArgument, emit, fitted_table, new_app, note, stdout
from warden.cli.connect import control_plane, log_cache
from warden.cli.options import (
    ChainOptions,
    NodesOptions,
    ReadOptions,
    WriteOptions,
    add_and_remove,
    grouped,
    option_group,
)
from warden.cli.picker import Row, confirm, pick_many, require_terminal
from warden.errors import BadInput, WardenError
from warden.fleet.devices import (
    DeviceChoice,
    DeviceTarget,
    add_choices,
    history_json,
    list_devices,
    remove_choices,
    resolve_devices,
)
from warden.fleet.inventory import Inventory

app = new_app(
    "allow-devices",
    "The machines (device ids) allowed to run an app, from the DstackApp contract itself.",
)
app.info.epilog = "\b\nExample: warden allow-devices add shared-key-demo prod6 --wait"

DevicesArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="[DEVICE]...", help="32-byte device ids (hex, 0x optional) or node names."),
]
InteractiveFlag = Annotated[
    bool,
    typer.Option(
        "-i",
        "--interactive",
        help="Pick devices on the terminal (arrow keys, space marks, enter sends): add offers the inventory's "
        "nodes, remove the allowed devices. Ctrl-C or declining sends nothing (exit 1); marking none exits 0.",
    ),
]
YesFlag = Annotated[bool, typer.Option("-y", "--yes", help="remove -i: send the picked devices without asking.")]
EnableFlag = Annotated[bool, typer.Option("--enable", help="Turn allowAnyDevice on.")]
DisableFlag = Annotated[bool, typer.Option("--disable", help="Turn allowAnyDevice off.")]


# -- list ----------------------------------------------------------------------------------------------


@grouped
def list_command(app_text: AppArgument, read: ReadOptions) -> None:
    """Owner, allowAnyDevice and every allowed device, from the contract's events, confirmed on chain.

    \b
    Example: warden allow-devices list shared-key-demo --nodes-file nodes.json
    """
    inventory, _ = read.nodes.inventory()
    contract = read.network.app(app_text)
    allowlist = list_devices(contract, inventory, read.cache())

    def human() -> None:
        if allowlist.allow_any_device:
            stdout.print(
                "allowAnyDevice is ON: any device the KMS trusts may boot this app; the list below is NOT enforced"
            )
        stdout.print(f"app     {allowlist.app}")
        stdout.print(f"chain   {allowlist.chain_id}")
        stdout.print(f"owner   {allowlist.owner}")
        stdout.print(f"allowAnyDevice  {'yes' if allowlist.allow_any_device else 'no'}")
        if not allowlist.devices:
            stdout.print("no device is allowed" + ("" if allowlist.allow_any_device else ": no node can boot this app"))
            return
        title = "allowed devices (not enforced)" if allowlist.allow_any_device else "allowed devices"
        rows = [(hex0x(d.device_id), d.label or "-", str(d.block)) for d in allowlist.devices]
        stdout.print(fitted_table(("device_id", "node", "added in block"), rows, title=title, title_justify="left"))

    emit(read.json_out, allowlist.as_json(), human)


app.command("list")(list_command)
app.command("ls", hidden=True)(list_command)


# -- history -------------------------------------------------------------------------------------------


@app.command("history")
@grouped
def history_command(app_text: AppArgument, read: ReadOptions) -> None:
    """The audit trail: every DeviceAdded, DeviceRemoved and AllowAnyDeviceSet, with block, time and tx.

    \b
    Example: warden allow-devices history shared-key-demo --json
    """
    inventory, _ = read.nodes.inventory()
    contract = read.network.app(app_text)
    events = history_json(contract, inventory, read.cache())

    def human() -> None:
        if not events:
            stdout.print(f"no device event for {contract.address}")
            return
        rows = []
        for e in events:
            when = dt.datetime.fromtimestamp(e["time"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if e["time"] else "-"
            value = e["device_id"] or ("enabled" if e["enabled"] else "disabled")
            node = e["node"] or (f"{e['former_node']} (former id)" if e["former_node"] else "-")
            rows.append((str(e["block"]), when, e["event"], value, node, e["tx"]))
        stdout.print(fitted_table(("block", "time (UTC)", "event", "device_id / value", "node", "tx"), rows))

    emit(read.json_out, {"app": contract.address, "events": events}, human)


# -- add / remove --------------------------------------------------------------------------------------


def _app_cvms(address: str) -> dict[bytes, list[str]]:
    """The app's CVMs by the device id of the node each runs on, when a control plane is configured."""
    if not os.environ.get("WARDEN_API_URL"):
        return {}
    try:
        with control_plane() as plane:
            cvms = plane.cvms(address)
    except BadInput:  # the control plane does not know this app: none of its CVMs is known
        return {}
    except WardenError as exc:  # the markers are a convenience: the chain still answers without them
        note(f"warning: no CVM markers ({exc})")
        return {}
    placed: dict[bytes, list[str]] = {}
    for cvm in cvms:
        if cvm.get("device_id"):
            placed.setdefault(parse_bytes32(str(cvm["device_id"]), "device id"), []).append(str(cvm["name"]))
    return placed


def _rows(choices: list[DeviceChoice], *, add: bool) -> list[Row[DeviceChoice]]:
    """Picker rows: node, region, device id, markers; `add` cannot pick allowed devices or unknown ids."""

    def row(c: DeviceChoice) -> Row[DeviceChoice]:
        device = hex0x(c.device_id) if c.device_id else "(no device id known)"
        why_not = None if c.device_id else "no id"
        if add and c.allowed:
            why_not = "allowed"
        return Row(c, (c.node or c.former_node or "-", c.region or "-", device, c.markers()), why_not)

    return [row(c) for c in choices]


def _pick(contract: AppAuth, inventory: Inventory, *, add: bool, yes: bool) -> list[DeviceTarget]:
    """Ask which devices to add (inventory nodes) or remove (allowed devices); remove confirms unless --yes."""
    cvms = _app_cvms(contract.address)
    if add:
        choices = add_choices(contract, inventory, cvms)
        if not any(c.device_id and not c.allowed for c in choices):
            note("every node of the inventory with a known device id is already allowed: nothing to add")
            return []
    else:
        choices = remove_choices(list_devices(contract, inventory, log_cache()), inventory, cvms)
        if not choices:
            note(f"no device is allowed by {contract.address}: nothing to remove")
            return []
    verb = "add to" if add else "remove from"
    picked = pick_many(f"devices to {verb} {contract.address}", _rows(choices, add=add), offer_all=add)
    if not picked:
        note("nothing selected: nothing was sent")
        return []
    if not add and not yes:
        for choice in picked:
            note(f"  removeDevice {hex0x(choice.device_id or b'')}  {choice.node or '-'}  {choice.markers()}")
        confirm(f"remove these {len(picked)} device(s) from {contract.address}?")
    return [c.target for c in picked]


@dataclass(frozen=True)
class DeviceRequest:
    """What `add` / `remove` were asked: the devices as typed, or -i to pick them."""

    add: bool
    devices: list[str]
    interactive: bool
    yes: bool = False  # remove -i: no confirmation


def _change(
    asked: DeviceRequest,
    app_text: str,
    network: ChainOptions,
    nodes: NodesOptions,
    writer: Writer,
) -> None:
    verb = "add" if asked.add else "remove"
    picking = asked.interactive and not asked.devices
    if asked.interactive and writer.json_out:
        raise BadInput("-i needs a terminal; it cannot be combined with --json")
    if picking:
        require_terminal("-i")
    inventory, source = nodes.inventory()
    targets = resolve_devices(asked.devices, inventory, source)
    if not targets and not asked.interactive:
        raise BadInput(f"no device given: pass device ids or node names, or -i to pick from a list ({verb})")
    if picking and asked.add and not len(inventory):
        raise BadInput(
            "add -i picks from the node inventory, and none is configured: pass --nodes-file "
            "(or set WARDEN_NODES_FILE), or give device ids"
        )
    contract = network.app(app_text)
    if picking:
        targets = _pick(contract, inventory, add=asked.add, yes=asked.yes)
        if not targets:
            return
    plan = device_changes(contract, [(t.device_id, t.node) for t in targets], add=asked.add)
    writer.change(plan, contract, what=f"{verb} devices", recheck=f"warden allow-devices list {contract.address}")


def _change_devices(add: bool, app_text: AppArgument, write: WriteOptions, nodes: NodesOptions,
                    devices: DevicesArgument = None, interactive: InteractiveFlag = False,
                    yes: YesFlag = False) -> None:  # fmt: skip
    _change(DeviceRequest(add, devices or [], interactive, yes), app_text, write.network, nodes, write.writer())


add_and_remove(
    app,
    _change_devices,
    """Allow devices: one addDevice each, sent together with consecutive nonces; allowed ones are skipped.

    -i picks nodes of the inventory on the terminal, each shown with its region, device id and markers
    (allowed, runs CVMs of this app). Ctrl-C sends nothing (exit 1); enter with none marked sends nothing (exit 0).

    \b
    Example: warden allow-devices add shared-key-demo prod6 --wait
    Example: warden allow-devices add shared-key-demo --nodes-file nodes.json \\
      0xfe1a151a241714021db327b106f0f62a806dfcab0d546b88dbfea379880bab73
    """,
    """Disallow devices: one removeDevice each; devices that are not allowed are skipped.

    -i picks allowed devices on the terminal, each shown with its node, region and markers (former id of a
    node, runs CVMs of this app), then asks to confirm what will be sent (--yes does not ask). Ctrl-C or
    declining sends nothing (exit 1); enter with none marked sends nothing (exit 0).

    \b
    Example: warden allow-devices remove shared-key-demo -i
    Example: warden allow-devices remove shared-key-demo --wait \\
      0x62068c0fcc99f63d1acb5c1c3b155733821798bf6731544987c278523dc7edc7
    """,
)


# -- allowAnyDevice ------------------------------------------------------------------------------------


def _set_allow_any(app_text: str, target: bool | None, network: ChainOptions, writer: Writer) -> None:
    """Set allowAnyDevice to `target`, or (None) to the opposite of what the chain says now."""
    contract = network.app(app_text)
    plan = allow_any_device_change(contract, target)
    entry = plan.entries[0]
    wanted = bool(entry.value)
    current = wanted if not plan.changes else not wanted
    report = writer.carry_out(contract.chain, plan, what=f"set allowAnyDevice on {contract.address}")
    data: dict[str, Any] = {"app": contract.address, "allow_any_device": current, "previous": current, "tx": None}
    result = report.results[0] if report.results else None
    if result is not None:
        data.update(tx=result.tx, status="mined" if result.status == "set" else result.status)
        if result.error:
            data["error"] = result.error
        if report.offline is not None or result.status == "set" or not writer.delivery.wait:
            data["allow_any_device"] = wanted
    state = "on" if wanted else "off"

    def human() -> None:
        if result is None:
            stdout.print(f"allowAnyDevice {state} (unchanged)")
        elif result.status == "set":
            stdout.print(f"allowAnyDevice is now {state} (tx {result.tx})")
        elif result.status == "pending":
            stdout.print(f"allowAnyDevice → {state} sent (tx {result.tx})")
        else:
            stdout.print(f"setting allowAnyDevice {state} failed: {result.error}")

    writer.report(report, data, recheck=f"warden app info {contract.address}", human=human)


@option_group
class Switch:
    """--enable / --disable."""

    enable: EnableFlag = False
    disable: DisableFlag = False

    def target(self, *, required: bool) -> bool | None:
        """True, False, or (when not required and neither is given) None: flip what the chain says."""
        if self.enable and self.disable:
            raise BadInput(f"pass {'exactly' if required else 'at most'} one of --enable and --disable")
        if required and not (self.enable or self.disable):
            raise BadInput("pass exactly one of --enable and --disable")
        return True if self.enable else False if self.disable else None


@app.command("allow-any")
@grouped
def allow_any_command(app_text: AppArgument, write: WriteOptions, switch: Switch) -> None:
    """Turn the allowAnyDevice bypass on or off (exactly one of --enable / --disable).

    \b
    Example: warden allow-devices allow-any shared-key-demo --disable --wait
    """
    _set_allow_any(app_text, switch.target(required=True), write.network, write.writer())


@app.command("disallow-any")
@grouped
def disallow_any_command(app_text: AppArgument, write: WriteOptions) -> None:
    """Turn the allowAnyDevice bypass off (same as allow-any --disable).

    \b
    Example: warden allow-devices disallow-any shared-key-demo --wait
    """
    _set_allow_any(app_text, False, write.network, write.writer())


@app.command("toggle-allow-any")
@grouped
def toggle_allow_any_command(app_text: AppArgument, write: WriteOptions, switch: Switch) -> None:
    """Flip allowAnyDevice from what the chain says now (or force it with --enable / --disable).

    \b
    Example: warden allow-devices toggle-allow-any shared-key-demo --wait
    """
    _set_allow_any(app_text, switch.target(required=False), write.network, write.writer())
