"""`warden preflight`: before a deploy, would this manifest on this node be allowed? Exit 1 if not, 3 if a
check could not run (undecided)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x, parse_bytes32
from warden.chain.kms import KmsRegistry
from warden.cli.common import (
    AppArgument,
    ChainIdOption,
    ChainOption,
    JsonOption,
    NodesFileOption,
    RpcUrlOption,
    emit,
    note,
    stdout,
)
from warden.cli.connect import app_address, connect, load_inventory
from warden.cli.kms import KmsOption
from warden.compose.hashing import compose_hash
from warden.compose.manifest import load_manifest
from warden.devnet.state import load_state
from warden.errors import BadInput, Undecided
from warden.fleet.devices import resolve_devices
from warden.fleet.preflight import PreflightInput, decision, preflight, skipped_summary
from warden.kms.client import KmsClient


def preflight_command(
    app_text: AppArgument,
    compose: Annotated[Path, typer.Option("--compose", metavar="FILE", help="The exact app-compose.json to deploy.")],
    node: Annotated[
        str | None, typer.Option("--node", metavar="NAME", help="Target node (from the inventory).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", metavar="HEX", help="Target device id.")] = None,
    os_image: Annotated[
        str | None, typer.Option("--os-image", metavar="HASH", help="OS image the CVM boots (checked on DstackKms).")
    ] = None,
    kms: KmsOption = None,
    kms_url: Annotated[str | None, typer.Option("--kms-url", metavar="URL", help="KMS the CVM will ask.")] = None,
    guest_version: Annotated[
        str | None, typer.Option("--guest-version", metavar="VERSION", help="dstack guest image version, e.g. 0.5.7.")
    ] = None,
    nodes_file: NodesFileOption = None,
    allow_skipped: Annotated[
        bool,
        typer.Option(
            "--allow-skipped", help="Exit 0 even when some checks could not run (they are still listed as skipped)."
        ),
    ] = False,
    rpc_url: RpcUrlOption = None,
    chain: ChainOption = None,
    chain_id: ChainIdOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a release before it ships: compose hash, device, registration, OS image, KMS version.

    Every "no" comes with the command that fixes it; exit 1 when the CVM would be refused, so CI can
    gate a release on it. A check that cannot run (no KMS known, no --node/--device, no --os-image) is
    listed as skipped with the flag that enables it, and the exit code is then 3 (undecided), never a
    pass, unless --allow-skipped.

    Example: warden preflight 0x7553…14F1 --compose app-compose.json --node prod6 --nodes-file nodes.json
    """
    if node and device:
        raise BadInput("pass at most one of --node and --device")
    try:
        raw = compose.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read --compose {compose}: {exc.strerror}") from None
    manifest = load_manifest(raw)
    device_id = None
    if node or device:
        inventory, source = load_inventory(nodes_file)
        device_id = resolve_devices([node or device or ""], inventory, source)[0].device_id
    image = parse_bytes32(os_image, "OS image hash") if os_image else None
    address = app_address(app_text)
    app = AppAuth.open(connect(rpc_url, chain_id, chain), address)
    registry = _registry(app, kms)
    meta = _kms_meta(kms_url) if kms_url else None
    fields = manifest.fields
    gateway = bool(fields.get("gateway_enabled", fields.get("tproxy_enabled", False)))
    checks = preflight(PreflightInput(app, compose_hash(raw), device_id, node, registry, image, gateway, meta,
                                      guest_version))  # fmt: skip
    verdict = decision(checks)
    skips = [c.name for c in checks if c.skipped]
    data = {
        "app": app.address,
        "compose_hash": hex0x(compose_hash(raw)),
        "device_id": hex0x(device_id) if device_id else None,
        "allowed": verdict == "allowed",
        "decision": verdict,
        "skipped": skips,
        "checks": [c.as_json() for c in checks],
        "warnings": list(manifest.warnings),
    }

    def human() -> None:
        table = Table("check", "", "detail", "fix")
        for c in checks:
            table.add_row(c.name, c.mark, c.detail, c.fix or (f"enable with {c.enable}" if c.enable else ""))
        stdout.print(table)
        if verdict == "refused":
            stdout.print("would be REFUSED")
        elif verdict == "undecided":
            stdout.print(f"UNDECIDED: {len(skips)} check(s) could not run ({', '.join(skips)})")
        else:
            stdout.print("would be allowed")

    emit(json_out, data, human)
    if verdict == "refused":
        raise typer.Exit(1)
    if verdict == "undecided":
        if allow_skipped:
            note(f"--allow-skipped: not checked: {', '.join(skips)}")
            return
        raise Undecided(
            f"undecided: {len(skips)} check(s) could not run, so this is not a pass:\n{skipped_summary(checks)}\n"
            "give what they need and rerun, or pass --allow-skipped to accept the gap"
        )


def _registry(app: AppAuth, kms: str | None) -> KmsRegistry | None:
    """The DstackKms to check registration against: the flag, the environment, or the devnet's (if any)."""
    address = kms or os.environ.get("WARDEN_KMS") or os.environ.get("KMS_CONTRACT_ADDR")
    if not address:
        state = load_state()
        address = state.kms if state is not None and state.chain_id == app.chain.chain_id else None
    return KmsRegistry.open(app.chain, address) if address else None


def _kms_meta(url: str) -> dict[str, Any]:
    client = KmsClient(url, timeout=10)
    try:
        return client.call("GetMeta", {})
    finally:
        client.close()
