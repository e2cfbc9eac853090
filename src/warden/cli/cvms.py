"""`warden cvms …`: CVMs and where they run (control plane); a replica is checked against the chain first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x, parse_bytes32
from warden.changes.asked import device_changes
from warden.changes.flow import Delivery
from warden.cli.changes import Writer
from warden.cli.common import emit, fitted_table, flag, new_app, note, stdout
from warden.cli.connect import kms_for
from warden.cli.nodes import refused_at_next_boot
from warden.cli.options import (
    FleetWriteOptions,
    ListOptions,
    ReplicaOptions,
    grouped,
)
from warden.errors import BadInput, OperationFailed, Undecided
from warden.fleet.preflight import Check, PreflightInput, preflight, skipped_summary

if TYPE_CHECKING:
    from warden.web.client import ControlPlaneClient

app = new_app("cvms", "CVMs placed on nodes (from the control plane), and replicas checked against the chain first.")
app.info.epilog = "\b\nExample: warden cvms ls --app shared-key-demo"

CvmArgument = Annotated[str, typer.Argument(metavar="CVM", help="CVM name, UUID or instance id.")]
NodeOption = Annotated[str, typer.Option("--node", metavar="NAME", help="Target node (`warden nodes ls`).")]


# -- helpers shared with `warden deploy` -----------------------------------------------------------------


def cvm_name(value: str) -> str:
    """A CVM name the control plane accepts (checked here so a bad one is refused before any transaction)."""
    text = value.strip()
    if not text or len(text) > 100 or any(c.isspace() or not c.isprintable() for c in text):
        raise BadInput(f"invalid CVM name {value!r}: 1-100 printable characters without spaces")
    return text


def ensure_new_cvm_name(plane: ControlPlaneClient, name: str) -> None:
    try:
        existing = plane.cvm(name)
    except BadInput:  # 404: the name is free
        return
    raise BadInput(f"a CVM named {name!r} exists already (on node {existing['node']}): pick another --name")


def node_device(node: dict[str, Any]) -> bytes | None:
    value = node.get("device_id")
    return parse_bytes32(str(value), "device id") if value else None


def chain_of(plane: ControlPlaneClient, address: str, chain: Chain) -> dict[str, Any] | None:
    """The control plane's record of the app (None if it has none); refused if it is on another chain."""
    try:
        record = plane.app(address)
    except BadInput:
        return None
    if int(record["chain_id"]) != chain.chain_id:
        raise BadInput(
            f"app {address} is on chain {record['chain_id']} (control plane), but the RPC serves chain "
            f"{chain.chain_id}: pass --rpc-url of chain {record['chain_id']}"
        )
    return record


def refusal(what: str, failing: Sequence[Check], hint: str | None = None) -> str:
    """`what` would be refused: each failing check with the command that fixes it."""
    lines = [f"{what} would be refused; nothing was changed:"]
    for check in failing:
        lines.append(f"  {check.name}: {check.detail}")
        if check.fix:
            lines.append(f"    fix: {check.fix}")
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table("check", "", "detail")
    for check in checks:
        detail = check.detail + (f" (enable with {check.enable})" if check.enable else "")
        table.add_row(check.name, check.mark, detail)
    return table


# -- ls --------------------------------------------------------------------------------------------------


AppOption = Annotated[str | None, flag("--app", "Only this app's CVMs (address or name).", metavar="APP")]


@app.command("ls")
@grouped
def ls_command(listing: ListOptions, app_key: AppOption = None) -> None:
    """Every CVM of the workspace, by name: node, app, status, and whether its node's device is allowed.

    \b
    Example: warden cvms ls --app shared-key-demo --json
    """
    first = listing.first()
    with listing.plane.client() as client:
        cvms = client.cvms(app_key, limit=first)

    def human() -> None:
        if not cvms:
            stdout.print("no CVM" + (f" of app {app_key}" if app_key else ""))
            return
        rows = []
        for cvm in cvms:
            allowed = {True: "yes", False: "NO", None: "-"}.get(cvm.get("device_allowed"), "-")
            app_label = f"{cvm['app_name']} ({cvm['app']})" if cvm.get("app_name") else str(cvm["app"])
            rows.append((str(cvm["name"]), str(cvm["node"]), app_label, str(cvm["status"]), allowed,
                         str(cvm.get("compose_hash") or "-")))  # fmt: skip
        stdout.print(fitted_table(("name", "node", "app", "status", "device allowed", "compose_hash"), rows))
        for line in refused_at_next_boot(cvms):
            note(line)

    emit(listing.json_out, {"cvms": cvms}, human)


app.command("list", hidden=True)(ls_command)


# -- replicate -------------------------------------------------------------------------------------------


@app.command("replicate")
@grouped
def replicate_command(
    cvm_key: CvmArgument,
    node_name: NodeOption,
    options: ReplicaOptions,
    fleet: FleetWriteOptions,
) -> None:
    """Place a replica of a CVM (same app, same compose hash) on another node, if the chain would let it boot.

    The app's contract is asked first: is the node's device allowed (or allowAnyDevice on), is the
    CVM's compose hash allowed, is the app registered with its KMS? Any "no" is printed with the
    command that fixes it and nothing is changed (exit 1). A check that could not run (no KMS known)
    stops it too (exit 3, undecided), unless --allow-skipped. With --allow-device, a missing device is
    added (addDevice, signed by the app owner) and the replica is registered only once that
    transaction is mined (within --timeout): a replica is never recorded on a node the chain refuses.

    \b
    Example: warden cvms replicate shared-key-demo-1 --node prod9 --allow-device
    """
    kms, network, signer, plane, json_out = fleet.kms, fleet.network, fleet.signer, fleet.plane, fleet.json_out
    with plane.client() as client:
        source = client.cvm(cvm_key)
        target = client.node(node_name)
        node = str(target["name"])
        name = cvm_name(options.name or f"{source['name']}-{node}")
        if node == source["node"]:
            raise BadInput(f"CVM {source['name']} already runs on node {node}: a replica goes on another node")
        device = node_device(target)
        if device is None:
            raise BadInput(
                f"node {node} has no known device id yet (it has not posted a quote): see warden nodes show {node}"
            )
        if not source.get("compose_hash"):
            raise BadInput(
                f"the control plane has no compose hash for CVM {source['name']}, so the replica cannot be checked"
            )
        ensure_new_cvm_name(client, name)
        manifest_hash = parse_bytes32(str(source["compose_hash"]), "compose hash")
        chain = network.connect()
        record = chain_of(client, str(source["app"]), chain)
        contract = AppAuth.open(chain, str(source["app"]))
        registry = kms_for(chain, kms, record.get("kms") if record else None)
        # the replica boots its source's OS image, which is not known here: no OS image check
        checks = preflight(PreflightInput(contract, manifest_hash, device, node, registry, image_checks=False))
        device_check = next(c for c in checks if c.name == "device")
        fixable = options.allow_device and device_check.ok is False
        failing = [c for c in checks if c.ok is False]
        blocking = [c for c in failing if not (fixable and c is device_check)]
        data: dict[str, Any] = {
            "replica_of": source["name"],
            "app": contract.address,
            "node": node,
            "device_id": hex0x(device),
            "compose_hash": hex0x(manifest_hash),
            "checks": [c.as_json() for c in checks],
        }
        if blocking:
            hint = None
            if device_check in blocking:
                hint = f"  or rerun with --allow-device to add {node}'s device now (signed by the app owner)"
            if json_out:
                emit(True, data | {"replicated": False, "cvm": None}, lambda: None)
            raise OperationFailed(refusal(f"a replica of {source['name']} on {node}", blocking, hint))
        skips = [c for c in checks if c.skipped]
        if skips and not options.allow_skipped:
            if json_out:
                emit(True, data | {"replicated": False, "cvm": None}, lambda: None)
            raise Undecided(
                f"a replica of {source['name']} on {node} is undecided: {len(skips)} check(s) could not run; "
                f"nothing was changed:\n{skipped_summary(checks)}\n"
                "give what they need and rerun, or pass --allow-skipped to place it without them"
            )
        if skips:
            note(f"--allow-skipped: not checked: {', '.join(c.name for c in skips)}")

        data["device"] = None
        if fixable:
            # through the one change flow, always waited for: the replica is recorded only once it is mined
            writer = Writer(Delivery("send", wait=True, timeout=options.timeout), signer, json_out)
            plan = device_changes(contract, [(device, node)], add=True)
            (row,) = writer.carry_out(chain, plan, what=f"add the device of {node} on {contract.address}").rows()
            data["device"] = row
            if row["status"] not in ("added", "already-allowed"):
                if json_out:
                    emit(True, data | {"replicated": False, "cvm": None}, lambda: None)
                raise OperationFailed(_device_not_added(row, node, device, contract.address, options.timeout))
            now = Check("device", True, f"{node} ({hex0x(device)}): addDevice {row['status']}")
            checks = [now if c is device_check else c for c in checks]
            data["checks"] = [c.as_json() for c in checks]
        elif options.allow_device:
            note(f"{node} may already boot app {contract.address}: no device to add")

        placed = client.add_cvm(name, app=contract.address, node=node, compose_hash=hex0x(manifest_hash))
    data |= {"replicated": True, "cvm": placed}

    def human() -> None:
        added = data["device"]
        if added is not None:
            stdout.print(f"device {hex0x(device)} of {node}: {added['status']}, tx {added['tx']}")
        stdout.print(checks_table(checks))
        stdout.print(f"replica {placed['name']} of {source['name']} registered on {node} (uuid {placed['uuid']})")
        stdout.print(f"app {contract.address}, compose hash {hex0x(manifest_hash)}")

    emit(json_out, data, human)


def _device_not_added(row: dict[str, Any], node: str, device: bytes, app: str, timeout: float) -> str:
    """Why the replica was not registered after --allow-device, and what to do next."""
    what = f"addDevice for {node} ({hex0x(device)})"
    if row["status"] == "pending":
        return (
            f"{what} was sent (tx {row.get('tx')}) but not mined within {timeout:g} s; the replica was not "
            f"registered. Check with warden allow-devices list {app}, then rerun this command (it sends nothing "
            "once the device is allowed)"
        )
    return f"{what} {row['status']}: {row.get('error') or 'no receipt'}; the replica was not registered"
