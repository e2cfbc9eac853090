"""`warden app …`: deploy a DstackApp through the KMS factory, read it, hand over its ownership, add it to the
control plane."""

from __future__ import annotations

from typing import Annotated

import typer

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x, parse_address
from warden.chain.tx import NotOwner, check_owner, execute, require_success
from warden.cli.common import AppArgument, JsonOption, TimeoutOption, emit, flag, lines, new_app, note, stdout
from warden.cli.connect import kms_for
from warden.cli.cvms import chain_of
from warden.cli.options import ChainOptions, ControlPlaneOptions, KmsOptions, NewAppOptions, SignerOptions, grouped
from warden.errors import BadInput, OperationFailed

app = new_app("app", "Deploy and inspect DstackApp contracts (one per app: its compose hashes and devices).")
app.info.epilog = "\b\nExample: warden app info 0x5FbDB2315678afecb367f032d93F642f64180aa3 --json"

# a deployment still unmined: rerunning would deploy a second app, so the user checks the transaction first
NEW_APP_RECHECK = "look up tx {tx} (e.g. in a block explorer) before rerunning: a rerun deploys another app"


OwnerOption = Annotated[
    str | None, flag("--owner", "Owner of the app (default: the signer); may be a Safe.", metavar="ADDR")
]


@app.command("deploy")
@grouped
def deploy(
    kms: KmsOptions,
    settings: NewAppOptions,
    network: ChainOptions,
    signer: SignerOptions,
    owner: OwnerOption = None,
    timeout: TimeoutOption = 120.0,
    json_out: JsonOption = False,
) -> None:
    """Deploy a DstackApp through DstackKms.deployAndRegisterApp (registered in the same transaction).

    The first device and compose hash go into the factory call; more are added right after, in one
    pipelined batch.

    Example: warden app deploy --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0 --allow-any-device --json
    """
    devices, hashes = settings.ids()  # malformed input is refused before any network call
    owner_address = parse_address(owner, "owner address") if owner else None
    registry = network.kms(kms)
    chain = registry.chain
    key = signer.signer(chain)
    owner_address = owner_address or key.address
    extra = len(devices[1:]) + len(hashes[1:])
    if extra and owner_address.lower() != key.address.lower():
        raise BadInput(
            "when the owner is not the signer, only one --device and one --compose-hash can be set at "
            "creation; the owner adds the rest afterwards"
        )
    (outcome,) = execute(
        chain,
        key,
        [
            registry.deploy_app(
                owner_address,
                disable_upgrades=settings.disable_upgrades,
                require_tcb_up_to_date=settings.require_tcb_up_to_date,
                allow_any_device=settings.allow_any_device,
                device_id=devices[0] if devices else bytes(32),
                compose_hash=hashes[0] if hashes else bytes(32),
            )
        ],
        timeout=timeout,
    )
    receipt = require_success(outcome, NEW_APP_RECHECK.format(tx=outcome.tx_hash)).receipt
    assert receipt is not None
    new_address = registry.app_from_receipt(receipt)
    if extra:
        deployed = AppAuth(chain, new_address)
        requests = [deployed.add_device(d) for d in devices[1:]] + [deployed.add_compose_hash(h) for h in hashes[1:]]
        for follow_up in execute(chain, key, requests, timeout=timeout):
            require_success(
                follow_up,
                f"app {new_address} was deployed; rerun `warden allow-devices list {new_address}` and "
                f"`warden compose-hashes list {new_address}` to check",
            )
    data = {
        "app": new_address,
        "app_id": "app_" + new_address[2:].lower(),
        "kms": registry.address,
        "owner": owner_address,
        "chain_id": chain.chain_id,
        "tx": outcome.tx_hash,
        "allow_any_device": settings.allow_any_device,
        "require_tcb_up_to_date": settings.require_tcb_up_to_date,
        "devices": [hex0x(d) for d in devices],
        "compose_hashes": [hex0x(h) for h in hashes],
    }

    emit(json_out, data, lines(f"DstackApp {new_address} deployed and registered with KMS {registry.address}",
                               f"owner {owner_address}; tx {outcome.tx_hash}",
                               f"next: warden app info {new_address}"))  # fmt: skip


@app.command("info")
@grouped
def info(app_text: AppArgument, network: ChainOptions, json_out: JsonOption = False) -> None:
    """Owner, flags and version of a DstackApp, read from the chain.

    Example: warden app info 0x5FbDB2315678afecb367f032d93F642f64180aa3 --json
    """
    details = network.app(app_text).info()

    def human() -> None:
        for key, value in details.as_json().items():
            shown = {True: "yes", False: "no", None: "-"}.get(value, value) if isinstance(value, bool | None) else value
            stdout.print(f"{key:<24} {shown}")

    emit(json_out, details.as_json(), human)


@app.command("transfer-owner")
@grouped
def transfer_owner(
    app_text: AppArgument,
    new_owner: Annotated[str, typer.Argument(metavar="NEW_OWNER", help="Address that must then run `accept-owner`.")],
    network: ChainOptions,
    signer: SignerOptions,
    timeout: TimeoutOption = 60.0,
    json_out: JsonOption = False,
) -> None:
    """Step 1 of 2 of an ownership handover: name the pending owner (the owner stays until it accepts).

    \b
    Example: warden app transfer-owner 0x5FbDB2315678afecb367f032d93F642f64180aa3 \\
      0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    """
    target = parse_address(new_owner, "new owner address")
    contract = network.app(app_text)
    key = signer.signer(contract.chain)
    check_owner(contract.owner(), key, f"app {contract.address}")
    (outcome,) = execute(contract.chain, key, [contract.transfer_ownership(target)], timeout=timeout)
    require_success(outcome, f"rerun `warden app info {contract.address}` to check its pending owner")
    data = {"app": contract.address, "owner": key.address, "pending_owner": target, "tx": outcome.tx_hash}

    def human() -> None:
        stdout.print(f"pending owner of {contract.address} is now {target} (tx {outcome.tx_hash})")
        stdout.print(f"next, signed by {target}: warden app accept-owner {contract.address}")

    emit(json_out, data, human)


@app.command("accept-owner")
@grouped
def accept_owner(
    app_text: AppArgument,
    network: ChainOptions,
    signer: SignerOptions,
    timeout: TimeoutOption = 60.0,
    json_out: JsonOption = False,
) -> None:
    """Step 2 of 2: the pending owner accepts and becomes the owner.

    Example: warden app accept-owner 0x5FbDB2315678afecb367f032d93F642f64180aa3 --keystore ~/.warden/new-owner.json
    """
    contract = network.app(app_text)
    key = signer.signer(contract.chain)
    pending = contract.pending_owner()
    if pending is None:
        raise BadInput(f"app {contract.address} has no pending owner: run `warden app transfer-owner` first")
    if pending.lower() != key.address.lower():
        raise NotOwner(f"signer {key.address} is not the pending owner {pending} of app {contract.address}")
    previous = contract.owner()
    (outcome,) = execute(contract.chain, key, [contract.accept_ownership()], timeout=timeout)
    require_success(outcome, f"rerun `warden app info {contract.address}` to check its owner")
    note(f"ownership of {contract.address} moved from {previous} to {key.address}")
    data = {
        "app": contract.address,
        "owner": key.address,
        "previous_owner": previous,
        "tx": outcome.tx_hash,
    }
    emit(
        json_out,
        data,
        lambda: stdout.print(f"{key.address} now owns {contract.address} (tx {outcome.tx_hash})"),
    )


NameOption = Annotated[
    str | None, flag("--name", "The name the control plane shows for it (default: the one it has).", metavar="NAME")
]


@app.command("register")
@grouped
def register(
    app_text: Annotated[str, typer.Argument(metavar="APP", help="DstackApp address (0x…, app_…, any case).")],
    network: ChainOptions,
    kms: KmsOptions,
    plane: ControlPlaneOptions,
    name: NameOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add an app (e.g. one made with `warden app deploy`) to the control plane's workspace, so its CVMs can be
    placed and its allowlist shows on the dashboard.

    The chain is asked first: APP must be a DstackApp registered with the KMS (--kms, WARDEN_KMS, the one the
    control plane recorded, or the devnet's); its chain id and KMS are recorded. No ownership proof is asked
    for: registering reads public state and grants nothing (changes are still signed by the app's owner).
    Rerunning changes nothing unless --name differs.

    Example: warden app register 0x5FbDB2315678afecb367f032d93F642f64180aa3 --name billing
    """
    address = parse_address(app_text, "app address")  # malformed input is refused before any network call
    if name is not None and not name.strip():
        raise BadInput("--name must not be empty")
    chain = network.connect()
    contract = AppAuth.open(chain, address)
    owner = contract.owner()
    with plane.client() as client:
        recorded = chain_of(client, address, chain)
        registry = kms_for(chain, kms, recorded.get("kms") if recorded else None)
        if registry is None:
            raise BadInput(f"no KMS to check app {address} against: pass --kms or set WARDEN_KMS")
        if not registry.is_app_registered(address):
            raise OperationFailed(
                f"app {address} is not registered with DstackKms {registry.address}, whose KMS would refuse its "
                "CVMs their keys; nothing was recorded (an app made with `warden app deploy --kms` is registered)"
            )
        wanted = {"chain_id": chain.chain_id, "kms": registry.address, "name": name or (recorded or {}).get("name")}
        if recorded is not None and all(recorded.get(k) == v for k, v in wanted.items()):
            status, saved = "already-registered", recorded
        else:
            saved = client.add_app(address, chain_id=chain.chain_id, kms=registry.address, name=name)
            status = "registered" if recorded is None else "updated"
        where = client.url
    data = {**saved, "app_id": "app_" + address[2:].lower(), "owner": owner, "status": status}
    shown = f"{address}" + (f" ({saved['name']})" if saved.get("name") else "")
    message = {
        "registered": f"app {shown} registered with the control plane at {where}",
        "updated": f"app {shown}: its record in the control plane at {where} was updated",
        "already-registered": f"app {shown} is already registered with the control plane at {where}; nothing changed",
    }[status]
    emit(json_out, data, lines(message, f"chain {chain.chain_id}, KMS {registry.address}, owner {owner}",
                               f"next: warden allow-devices list {address}"))  # fmt: skip
