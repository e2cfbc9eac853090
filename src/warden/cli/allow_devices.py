"""`warden allow-devices …`: the device allowlist of a DstackApp, read from and written to the chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.chain.inputs import hex0x
from warden.changes.asked import allow_any_device_change, device_changes
from warden.cli.changes import Writer
from warden.cli.common import AppArgument, emit, new_app, note, stdout
from warden.cli.connect import log_cache
from warden.cli.options import (
    ChainOptions,
    NodesOptions,
    ReadOptions,
    WriteOptions,
    add_and_remove,
    grouped,
    option_group,
)
from warden.errors import BadInput
from warden.fleet.devices import DeviceTarget, addable_nodes, history_json, list_devices, resolve_devices
from warden.fleet.inventory import Inventory

app = new_app(
    "allow-devices",
    "The machines (device ids) allowed to run an app, from the DstackApp contract itself.",
)

DevicesArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="[DEVICE]...", help="32-byte device ids (hex, 0x optional) or node names."),
]
InteractiveFlag = Annotated[bool, typer.Option("-i", "--interactive", help="Pick devices from a list.")]
EnableFlag = Annotated[bool, typer.Option("--enable", help="Turn allowAnyDevice on.")]
DisableFlag = Annotated[bool, typer.Option("--disable", help="Turn allowAnyDevice off.")]


# -- list ----------------------------------------------------------------------------------------------


@grouped
def list_command(app_text: AppArgument, read: ReadOptions) -> None:
    """Owner, allowAnyDevice and every allowed device, from the contract's events, confirmed on chain.

    Example: warden allow-devices list 0x7553…14F1 --nodes-file nodes.json
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
        table = Table("device_id", "node", "added in block", title=title, title_justify="left")
        for device in allowlist.devices:
            table.add_row(hex0x(device.device_id), device.label or "-", str(device.block))
        stdout.print(table)

    emit(read.json_out, allowlist.as_json(), human)


app.command("list")(list_command)
app.command("ls", hidden=True)(list_command)


# -- history -------------------------------------------------------------------------------------------


@app.command("history")
@grouped
def history_command(app_text: AppArgument, read: ReadOptions) -> None:
    """The audit trail: every DeviceAdded, DeviceRemoved and AllowAnyDeviceSet, with block, time and tx.

    Example: warden allow-devices history 0x7553…14F1 --json
    """
    inventory, _ = read.nodes.inventory()
    contract = read.network.app(app_text)
    events = history_json(contract, inventory, read.cache())

    def human() -> None:
        if not events:
            stdout.print(f"no device event for {contract.address}")
            return
        table = Table("block", "time (UTC)", "event", "device_id / value", "node", "tx")
        for e in events:
            when = dt.datetime.fromtimestamp(e["time"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if e["time"] else "-"
            value = e["device_id"] or ("enabled" if e["enabled"] else "disabled")
            node = e["node"] or (f"{e['former_node']} (former id)" if e["former_node"] else "-")
            table.add_row(str(e["block"]), when, e["event"], value, node, e["tx"])
        stdout.print(table)

    emit(read.json_out, {"app": contract.address, "events": events}, human)


# -- add / remove --------------------------------------------------------------------------------------


def _pick(choices: list[DeviceTarget], prompt: str, inventory: Inventory) -> list[DeviceTarget]:
    for i, choice in enumerate(choices, 1):
        label = choice.node or inventory.label_for_device(choice.device_id) or "-"
        note(f"  {i:>3}  {label:<24} {hex0x(choice.device_id)}")
    answer = str(typer.prompt(f"{prompt} (numbers separated by commas, or 'all')", err=True)).strip()
    if answer.lower() == "all":
        return choices
    picked = []
    for part in filter(None, (p.strip() for p in answer.split(","))):
        if not part.isdigit() or not 1 <= int(part) <= len(choices):
            raise BadInput(f"invalid choice {part!r}: pick numbers between 1 and {len(choices)}")
        if choices[int(part) - 1] not in picked:
            picked.append(choices[int(part) - 1])
    return picked


@dataclass(frozen=True)
class DeviceRequest:
    """What `add` / `remove` were asked: the devices as typed, or -i to pick them."""

    add: bool
    devices: list[str]
    interactive: bool


def _change(
    asked: DeviceRequest,
    app_text: str,
    network: ChainOptions,
    nodes: NodesOptions,
    writer: Writer,
) -> None:
    verb = "add" if asked.add else "remove"
    if asked.interactive and writer.json_out:
        raise BadInput("-i needs a terminal; it cannot be combined with --json")
    inventory, source = nodes.inventory()
    targets = resolve_devices(asked.devices, inventory, source)
    if not targets and not asked.interactive:
        raise BadInput(f"no device given: pass device ids or node names, or -i to pick from a list ({verb})")
    if asked.interactive and asked.add and not targets and not len(inventory):
        raise BadInput(
            "add -i picks from the node inventory, and none is configured: pass --nodes-file "
            "(or set WARDEN_NODES_FILE), or give device ids"
        )
    contract = network.app(app_text)
    if asked.interactive and not targets:
        choices = (
            addable_nodes(contract, inventory)
            if asked.add
            else [DeviceTarget(d.device_id, d.node) for d in list_devices(contract, inventory, log_cache()).devices]
        )
        if not choices:
            note("every node of the inventory is already allowed" if asked.add else "no device is allowed")
            return
        targets = _pick(choices, f"devices to {verb}", inventory)
        if not targets:
            note("nothing selected")
            return
    plan = device_changes(contract, [(t.device_id, t.node) for t in targets], add=asked.add)
    writer.change(plan, contract, what=f"{verb} devices", recheck=f"warden allow-devices list {contract.address}")


def _change_devices(add: bool, app_text: AppArgument, write: WriteOptions, nodes: NodesOptions,
                    devices: DevicesArgument = None, interactive: InteractiveFlag = False) -> None:  # fmt: skip
    _change(DeviceRequest(add, devices or [], interactive), app_text, write.network, nodes, write.writer())


add_and_remove(
    app,
    _change_devices,
    """Allow devices: one addDevice each, sent together with consecutive nonces; allowed ones are skipped.

    Example: warden allow-devices add 0x7553…14F1 prod6 0x7a3c…e1 --wait --nodes-file nodes.json
    """,
    """Disallow devices: one removeDevice each; devices that are not allowed are skipped.

    Example: warden allow-devices remove 0x7553…14F1 0x5e1f…09 --wait
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

    Example: warden allow-devices allow-any 0x7553…14F1 --disable --wait
    """
    _set_allow_any(app_text, switch.target(required=True), write.network, write.writer())


@app.command("disallow-any")
@grouped
def disallow_any_command(app_text: AppArgument, write: WriteOptions) -> None:
    """Turn the allowAnyDevice bypass off (same as allow-any --disable).

    Example: warden allow-devices disallow-any 0x7553…14F1 --wait
    """
    _set_allow_any(app_text, False, write.network, write.writer())


@app.command("toggle-allow-any")
@grouped
def toggle_allow_any_command(app_text: AppArgument, write: WriteOptions, switch: Switch) -> None:
    """Flip allowAnyDevice from what the chain says now (or force it with --enable / --disable).

    Example: warden allow-devices toggle-allow-any 0x7553…14F1 --wait
    """
    _set_allow_any(app_text, switch.target(required=False), write.network, write.writer())
