"""`warden deploy`: a CVM of a manifest on a node, under an app that exists (--app-id) or a new one.

An explicit app id is used as given or the deploy is refused: warden never silently creates another
app (the field report's `--custom-app-id` bug). A new app is created through DstackKms with the node's
device id and the manifest's compose hash, so the first boot is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x, parse_address
from warden.chain.kms import KmsRegistry
from warden.chain.tx import execute, require_success
from warden.cli.app import NEW_APP_RECHECK
from warden.cli.common import emit, flag, note, stdout
from warden.cli.connect import kms_for
from warden.cli.cvms import chain_of, checks_table, cvm_name, ensure_new_cvm_name, node_device, refusal
from warden.cli.options import (
    DeployOptions,
    FleetWriteOptions,
    SignerOptions,
    grouped,
)
from warden.compose.hashing import compose_hash
from warden.compose.manifest import load_manifest
from warden.errors import BadInput, OperationFailed, WardenError
from warden.fleet.preflight import Check, PreflightInput, preflight

ComposeOption = Annotated[Path, flag("--compose", "The exact app-compose.json (its bytes are hashed).", metavar="FILE")]
NodeOption = Annotated[str, flag("--node", "Node to run on (`warden nodes ls`).", metavar="NAME")]


@grouped
def deploy_command(
    compose: ComposeOption,
    node_name: NodeOption,
    options: DeployOptions,
    fleet: FleetWriteOptions,
) -> None:
    """Deploy a CVM: the app on chain (existing or new), then app and CVM in the control plane.

    With --app-id (alias --custom-app-id) the app must exist on chain, be registered with the KMS, and
    allow the manifest's compose hash and the node's device; otherwise each "no" is printed with the
    command that fixes it and nothing changes. Without it, a new DstackApp is deployed through
    DstackKms.deployAndRegisterApp allowing exactly this compose hash and this node's device (or any
    device with --allow-any-device).

    \b
    Example: warden deploy --compose app-compose.json --node prod6 \\
      --custom-app-id 0xCAa3a03a6e34E78e71d669E41961Ca8c95FD1611 --json
    """
    kms, network, signer, plane, json_out = fleet.kms, fleet.network, fleet.signer, fleet.plane, fleet.json_out
    try:
        raw = compose.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read --compose {compose}: {exc.strerror}") from None
    manifest = load_manifest(raw)
    manifest_hash = compose_hash(raw)
    explicit = parse_address(options.app_id, "app id") if options.app_id else None  # refused before any network call
    allow_any_device = options.allow_any_device
    if explicit and allow_any_device:
        raise BadInput(
            f"--allow-any-device sets the flag on a new app; app {explicit} exists: turn it on with "
            f"warden allow-devices allow-any {explicit} --enable"
        )
    with plane.client() as client:
        target = client.node(node_name)
        node = str(target["name"])
        device = node_device(target)
        cvm = cvm_name(options.name or f"{manifest.name or compose.stem}-{node}")
        ensure_new_cvm_name(client, cvm)
        chain = network.connect()
        checks: list[Check] = []
        tx: str | None = None
        if explicit:
            contract = AppAuth.open(chain, explicit)
            record = chain_of(client, contract.address, chain)
            registry = kms_for(chain, kms, record.get("kms") if record else None)
            if registry is None:
                raise BadInput(f"no KMS to check app {contract.address} against: pass --kms or set WARDEN_KMS")
            if not registry.is_app_registered(contract.address):
                raise BadInput(
                    f"app {contract.address} is not registered with DstackKms {registry.address}, whose KMS would "
                    "refuse its CVMs; warden does not create another app in its place: pass the KMS it is "
                    f"registered with (--kms), or register it: DstackKms({registry.address}).registerApp"
                    f"({contract.address})"
                )
            if device is None and not contract.allow_any_device():
                raise BadInput(f"node {node} has no known device id yet (it has not posted a quote): cannot check it")
            checks = preflight(PreflightInput(contract, manifest_hash, device, node, registry, image_checks=False))
            failing = [c for c in checks if c.ok is False]
            if failing:
                if json_out:
                    refused = {"app": contract.address, "cvm": None, "node": node, "compose_hash": hex0x(manifest_hash),
                               "created_app": False, "tx": None, "checks": [c.as_json() for c in checks]}  # fmt: skip
                    emit(True, refused, lambda: None)
                raise OperationFailed(refusal(f"a CVM of app {contract.address} on {node}", failing))
            address = contract.address
        else:
            if device is None and not allow_any_device:
                raise BadInput(
                    f"node {node} has no known device id yet (it has not posted a quote): the new app could not "
                    "allow it; wait for its attestation, or pass --allow-any-device"
                )
            found = kms_for(chain, kms, None)
            if found is None:
                raise BadInput("no KMS to deploy the app through: pass --kms or set WARDEN_KMS")
            registry = found
            address, tx = _new_app(registry, manifest_hash, device, options, signer)
        try:
            client.add_app(address, chain_id=chain.chain_id, kms=registry.address, name=manifest.name or None)
            placed = client.add_cvm(cvm, app=address, node=node, compose_hash=hex0x(manifest_hash))
        except WardenError as exc:
            if tx is None:
                raise
            raise OperationFailed(
                f"app {address} was deployed (tx {tx}), but the control plane did not record the CVM: {exc}; "
                f"rerun with --app-id {address} to use that app"
            ) from None

    data: dict[str, Any] = {
        "app": address,
        "cvm": placed["name"],
        "cvm_uuid": placed["uuid"],
        "node": node,
        "device_id": hex0x(device) if device else None,
        "compose_hash": hex0x(manifest_hash),
        "created_app": tx is not None,
        "tx": tx,
        "chain_id": chain.chain_id,
        "kms": registry.address,
        "allow_any_device": allow_any_device if tx else AppAuth(chain, address).allow_any_device(),
        "checks": [c.as_json() for c in checks],
        "warnings": list(manifest.warnings),
    }

    def human() -> None:
        for warning in manifest.warnings:
            note(f"warning: {warning}")
        if tx:
            stdout.print(f"new DstackApp {address} (tx {tx}), registered with KMS {registry.address}")
        else:
            stdout.print(checks_table(checks))
            stdout.print(f"using app {address} (no new app created)")
        stdout.print(f"CVM {placed['name']} on {node} (uuid {placed['uuid']}), compose hash {hex0x(manifest_hash)}")

    emit(json_out, data, human)


def _new_app(
    registry: KmsRegistry, manifest_hash: bytes, device: bytes | None, options: DeployOptions, signer: SignerOptions
) -> tuple[str, str]:
    """deployAndRegisterApp owned by the signer, allowing this compose hash and device; (app, tx)."""
    key = signer.signer(registry.chain)
    request = registry.deploy_app(
        key.address,
        allow_any_device=options.allow_any_device,
        device_id=device or bytes(32),
        compose_hash=manifest_hash,
    )
    (outcome,) = execute(registry.chain, key, [request], timeout=options.timeout)
    receipt = require_success(outcome, NEW_APP_RECHECK.format(tx=outcome.tx_hash)).receipt
    assert receipt is not None and outcome.tx_hash is not None
    return registry.app_from_receipt(receipt), outcome.tx_hash
