"""`warden preflight`: before a deploy, would this manifest on this node be allowed? Exit 1 if not, 3 if a
check could not run (undecided)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from warden.chain.inputs import hex0x
from warden.cli.common import AppArgument, JsonOption, emit, flag, note, stdout
from warden.cli.connect import kms_for
from warden.cli.options import (
    ChainOptions,
    KmsOptions,
    NodesOptions,
    PreflightOptions,
    TargetOptions,
    grouped,
)
from warden.compose.hashing import compose_hash
from warden.compose.manifest import load_manifest
from warden.errors import BadInput, Undecided
from warden.fleet.preflight import PreflightInput, decision, preflight, skipped_summary
from warden.kms.client import KmsClient

ComposeOption = Annotated[Path, flag("--compose", "The exact app-compose.json to deploy.", metavar="FILE")]


@grouped
def preflight_command(
    app_text: AppArgument,
    compose: ComposeOption,
    target: TargetOptions,
    optional: PreflightOptions,
    kms: KmsOptions,
    nodes: NodesOptions,
    network: ChainOptions,
    json_out: JsonOption = False,
) -> None:
    """Check a release before it ships: compose hash, device, registration, OS image, KMS version.

    Every "no" comes with the command that fixes it; exit 1 when the CVM would be refused, so CI can
    gate a release on it. A check that cannot run (no KMS known, no --node/--device, no --os-image) is
    listed as skipped with the flag that enables it, and the exit code is then 3 (undecided), never a
    pass, unless --allow-skipped.

    \b
    Example: warden preflight shared-key-demo --compose app-compose.json --node prod6 --nodes-file nodes.json
    """
    target.check()
    try:
        raw = compose.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read --compose {compose}: {exc.strerror}") from None
    manifest = load_manifest(raw)
    device_id = target.device_id(nodes)
    image = optional.os_image_hash()
    app = network.app(app_text)
    registry = kms_for(app.chain, kms)
    meta = _kms_meta(optional.kms_url) if optional.kms_url else None
    fields = manifest.fields
    gateway = bool(fields.get("gateway_enabled", fields.get("tproxy_enabled", False)))
    checks = preflight(PreflightInput(app, compose_hash(raw), device_id, target.node, registry, image, gateway, meta,
                                      optional.guest_version))  # fmt: skip
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
        if optional.allow_skipped:
            note(f"--allow-skipped: not checked: {', '.join(skips)}")
            return
        raise Undecided(
            f"undecided: {len(skips)} check(s) could not run, so this is not a pass:\n{skipped_summary(checks)}\n"
            "give what they need and rerun, or pass --allow-skipped to accept the gap"
        )


def _kms_meta(url: str) -> dict[str, Any]:
    client = KmsClient(url, timeout=10)
    try:
        return client.call("GetMeta", {})
    finally:
        client.close()
