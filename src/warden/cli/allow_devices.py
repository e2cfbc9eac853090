"""`warden allow-devices …`: the device allowlist of a DstackApp, read from and written to the chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x
from warden.chain.tx import check_owner, execute
from warden.cli.changes import carry_out, emit_offline, raise_if_unmined, receipt_progress
from warden.cli.common import (
    AppArgument,
    ChainIdOption,
    ChainOption,
    JsonOption,
    KeystoreOption,
    NodesFileOption,
    PrivateKeyOption,
    RpcUrlOption,
    TimeoutOption,
    WaitOption,
    emit,
    new_app,
    note,
    stdout,
)
from warden.cli.connect import app_address, connect, load_inventory, log_cache, signer_for
from warden.errors import BadInput
from warden.fleet.devices import (
    DeviceTarget,
    addable_nodes,
    device_spec,
    history_json,
    list_devices,
    plan_devices,
    resolve_devices,
    results_json,
)
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
SafeBatchOption = Annotated[
    Path | None,
    typer.Option(
        "--safe-batch",
        metavar="FILE",
        help="Owner is a Safe: write the changes as one Transaction Builder batch instead of sending.",
    ),
]
CalldataFlag = Annotated[bool, typer.Option("--calldata", help="Print target + calldata per change; send nothing.")]
EnableFlag = Annotated[bool, typer.Option("--enable", help="Turn allowAnyDevice on.")]
DisableFlag = Annotated[bool, typer.Option("--disable", help="Turn allowAnyDevice off.")]
NoCacheFlag = Annotated[bool, typer.Option("--no-cache", help="Scan the chain from scratch, ignoring the cache.")]


def _open(app_text: str, rpc_url: str | None, chain_id: int | None, chain: str | None) -> AppAuth:
    address = app_address(app_text)  # malformed input is refused before any network call
    return AppAuth.open(connect(rpc_url, chain_id, chain), address)


# -- list ----------------------------------------------------------------------------------------------


def list_command(
    app_text: AppArgument,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    nodes_file: NodesFileOption = None,
    no_cache: NoCacheFlag = False,
    json_out: JsonOption = False,
) -> None:
    """Owner, allowAnyDevice and every allowed device, from the contract's events, confirmed on chain.

    Example: warden allow-devices list 0x7553…14F1 --nodes-file nodes.json
    """
    inventory, _ = load_inventory(nodes_file)
    contract = _open(app_text, rpc_url, chain_id, chain)
    allowlist = list_devices(contract, inventory, None if no_cache else log_cache())

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

    emit(json_out, allowlist.as_json(), human)


app.command("list")(list_command)
app.command("ls", hidden=True)(list_command)


# -- history -------------------------------------------------------------------------------------------


@app.command("history")
def history_command(
    app_text: AppArgument,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    nodes_file: NodesFileOption = None,
    no_cache: NoCacheFlag = False,
    json_out: JsonOption = False,
) -> None:
    """The audit trail: every DeviceAdded, DeviceRemoved and AllowAnyDeviceSet, with block, time and tx.

    Example: warden allow-devices history 0x7553…14F1 --json
    """
    inventory, _ = load_inventory(nodes_file)
    contract = _open(app_text, rpc_url, chain_id, chain)
    events = history_json(contract, inventory, None if no_cache else log_cache())

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

    emit(json_out, {"app": contract.address, "events": events}, human)


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


def _change(
    add: bool,
    app_text: str,
    devices: list[str] | None,
    interactive: bool,
    wait: bool,
    timeout: float,
    safe_batch_file: Path | None,
    calldata: bool,
    rpc_url: str | None,
    chain: str | None,
    chain_id: int | None,
    private_key: str | None,
    keystore: str | None,
    nodes_file: Path | None,
    json_out: bool,
) -> None:
    verb = "add" if add else "remove"
    if safe_batch_file and calldata:
        raise BadInput("choose one of --safe-batch and --calldata")
    if interactive and json_out:
        raise BadInput("-i needs a terminal; it cannot be combined with --json")
    inventory, source = load_inventory(nodes_file)
    targets = resolve_devices(devices or [], inventory, source)
    if not targets and not interactive:
        raise BadInput(f"no device given: pass device ids or node names, or -i to pick from a list ({verb})")
    if interactive and add and not targets and not len(inventory):
        raise BadInput(
            "add -i picks from the node inventory, and none is configured: pass --nodes-file "
            "(or set WARDEN_NODES_FILE), or give device ids"
        )
    contract = _open(app_text, rpc_url, chain_id, chain)
    if interactive and not targets:
        choices = (
            addable_nodes(contract, inventory)
            if add
            else [DeviceTarget(d.device_id, d.node) for d in list_devices(contract, inventory, log_cache()).devices]
        )
        if not choices:
            note("every node of the inventory is already allowed" if add else "no device is allowed")
            return
        targets = _pick(choices, f"devices to {verb}", inventory)
        if not targets:
            note("nothing selected")
            return
    allow_any = contract.allow_any_device()
    if not add and allow_any:
        note(
            "warning: allowAnyDevice is on, so removing devices has no practical effect until it is turned off "
            f"(warden allow-devices disallow-any {contract.address})"
        )
    planned = plan_devices(contract, targets, add=add)
    data: dict[str, Any] = {"app": contract.address, "allow_any_device": allow_any}
    results, offline = carry_out(
        contract, device_spec(contract), planned, noun="device", data=data, wait=wait, timeout=timeout,
        safe_batch_file=safe_batch_file, calldata=calldata, private_key=private_key, keystore=keystore,
        json_out=json_out,
    )  # fmt: skip
    data["results"] = results_json(results, targets)
    if offline:
        if json_out:
            emit(True, data, lambda: None)
        return

    def human() -> None:
        table = Table("device_id", "node", "status", "tx")
        for row in data["results"]:
            status = row["status"] + (f" ({row['error']})" if row.get("error") else "")
            label = inventory.label_for_device(bytes.fromhex(row["device_id"][2:]))
            table.add_row(row["device_id"], label or "-", status, row["tx"] or "-")
        stdout.print(table)
        if not wait and any(r["status"] == "pending" for r in data["results"]):
            note(f"sent; check with: warden allow-devices list {contract.address} (or rerun with --wait)")

    emit(json_out, data, human)
    raise_if_unmined(
        data["results"], wait=wait, timeout=timeout, recheck=f"warden allow-devices list {contract.address}"
    )
    if any(r["status"] == "failed" for r in data["results"]):
        raise typer.Exit(1)


def add_command(
    app_text: AppArgument,
    devices: DevicesArgument = None,
    interactive: InteractiveFlag = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
    safe_batch_file: SafeBatchOption = None,
    calldata: CalldataFlag = False,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    private_key: PrivateKeyOption = None,
    keystore: KeystoreOption = None,
    nodes_file: NodesFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Allow devices: one addDevice each, sent together with consecutive nonces; allowed ones are skipped.

    Example: warden allow-devices add 0x7553…14F1 prod6 0x7a3c…e1 --wait --nodes-file nodes.json
    """
    _change(True, app_text, devices, interactive, wait, timeout, safe_batch_file, calldata, rpc_url, chain,
            chain_id, private_key, keystore, nodes_file, json_out)  # fmt: skip


def remove_command(
    app_text: AppArgument,
    devices: DevicesArgument = None,
    interactive: InteractiveFlag = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
    safe_batch_file: SafeBatchOption = None,
    calldata: CalldataFlag = False,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    private_key: PrivateKeyOption = None,
    keystore: KeystoreOption = None,
    nodes_file: NodesFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Disallow devices: one removeDevice each; devices that are not allowed are skipped.

    Example: warden allow-devices remove 0x7553…14F1 0x5e1f…09 --wait
    """
    _change(False, app_text, devices, interactive, wait, timeout, safe_batch_file, calldata, rpc_url, chain,
            chain_id, private_key, keystore, nodes_file, json_out)  # fmt: skip


app.command("add")(add_command)
app.command("remove")(remove_command)
app.command("rm", hidden=True)(remove_command)


# -- allowAnyDevice ------------------------------------------------------------------------------------


def _set_allow_any(
    app_text: str,
    target: bool | None,
    wait: bool,
    timeout: float,
    safe_batch_file: Path | None,
    calldata: bool,
    rpc_url: str | None,
    chain: str | None,
    chain_id: int | None,
    private_key: str | None,
    keystore: str | None,
    json_out: bool,
) -> None:
    """Set allowAnyDevice to `target`, or (None) to the opposite of what the chain says now."""
    if safe_batch_file and calldata:
        raise BadInput("choose one of --safe-batch and --calldata")
    contract = _open(app_text, rpc_url, chain_id, chain)
    current = contract.allow_any_device()
    wanted = (not current) if target is None else target
    data: dict[str, Any] = {"app": contract.address, "allow_any_device": current, "previous": current, "tx": None}
    if wanted == current:
        note(f"allowAnyDevice is already {'on' if current else 'off'}: nothing to send")
        emit(json_out, data, lambda: stdout.print(f"allowAnyDevice {'on' if current else 'off'} (unchanged)"))
        return
    request = contract.set_allow_any_device(wanted)
    if safe_batch_file or calldata:
        emit_offline(contract.chain, contract.owner(), [request], safe_batch_file, data,
                      f"set allowAnyDevice {str(wanted).lower()}", json_out)  # fmt: skip
        data["allow_any_device"] = wanted
        if json_out:
            emit(True, data, lambda: None)
        return
    signer = signer_for(contract.chain, private_key, keystore)
    check_owner(contract.owner(), signer, f"app {contract.address}", contract.chain)
    with receipt_progress(wait and not json_out) as progress:
        (outcome,) = execute(contract.chain, signer, [request], wait=wait, timeout=timeout, on_progress=progress)
    data["tx"] = outcome.tx_hash
    data["status"] = outcome.status
    if outcome.status in ("failed", "reverted"):
        data["error"] = outcome.error
    data["allow_any_device"] = contract.allow_any_device() if wait else wanted

    def human() -> None:
        state = "on" if wanted else "off"
        if outcome.status == "mined":
            stdout.print(f"allowAnyDevice is now {state} (tx {outcome.tx_hash})")
        elif outcome.status == "pending":
            stdout.print(f"allowAnyDevice → {state} sent (tx {outcome.tx_hash})")
            if not wait:
                note(f"check with: warden app info {contract.address} (or rerun with --wait)")
        else:
            stdout.print(f"setting allowAnyDevice {state} {outcome.status}: {outcome.error}")

    emit(json_out, data, human)
    raise_if_unmined([data], wait=wait, timeout=timeout, recheck=f"warden app info {contract.address}")
    if outcome.status in ("failed", "reverted"):
        raise typer.Exit(1)


@app.command("allow-any")
def allow_any_command(
    app_text: AppArgument,
    enable: EnableFlag = False,
    disable: DisableFlag = False,
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
    """Turn the allowAnyDevice bypass on or off (exactly one of --enable / --disable).

    Example: warden allow-devices allow-any 0x7553…14F1 --disable --wait
    """
    if enable == disable:
        raise BadInput("pass exactly one of --enable and --disable")
    _set_allow_any(app_text, enable, wait, timeout, safe_batch_file, calldata, rpc_url, chain, chain_id,
                   private_key, keystore, json_out)  # fmt: skip


@app.command("disallow-any")
def disallow_any_command(
    app_text: AppArgument,
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
    """Turn the allowAnyDevice bypass off (same as allow-any --disable).

    Example: warden allow-devices disallow-any 0x7553…14F1 --wait
    """
    _set_allow_any(app_text, False, wait, timeout, safe_batch_file, calldata, rpc_url, chain, chain_id,
                   private_key, keystore, json_out)  # fmt: skip


@app.command("toggle-allow-any")
def toggle_allow_any_command(
    app_text: AppArgument,
    enable: EnableFlag = False,
    disable: DisableFlag = False,
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
    """Flip allowAnyDevice from what the chain says now (or force it with --enable / --disable).

    Example: warden allow-devices toggle-allow-any 0x7553…14F1 --wait
    """
    if enable and disable:
        raise BadInput("pass at most one of --enable and --disable")
    target = True if enable else False if disable else None
    _set_allow_any(app_text, target, wait, timeout, safe_batch_file, calldata, rpc_url, chain, chain_id,
                   private_key, keystore, json_out)  # fmt: skip
