"""`warden devnet …`: the whole stack on this machine, and one command per runbook step.

up/down/status/env start, stop and describe it; `node update-firmware`, `cvm boot|reboot|stop|sign` and
`kms --version` act on the demo fleet as the seeds' runbooks do on a real one.
"""

from __future__ import annotations

import shlex
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from warden.cli.common import JsonOption, emit, flag, new_app, note, stdout
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.devnet.state import DevnetCvm, DevnetState, state_file, warden_home
from warden.errors import BadInput, OperationFailed

app = new_app("devnet", "The whole stack on one machine: chain, KMS, control plane, demo nodes and CVMs.")
node_app = new_app("node", "Act on a simulated node of the devnet.")
cvm_app = new_app("cvm", "Act on a demo CVM of the devnet.")
app.info.epilog = '\b\nExample: warden devnet up --detach && eval "$(warden devnet env)"'
node_app.info.epilog = "\b\nExample: warden devnet node update-firmware prod6"
cvm_app.info.epilog = "\b\nExample: warden devnet cvm reboot shared-key-demo-2"
app.add_typer(node_app)
app.add_typer(cvm_app)


def _print_started(state: DevnetState) -> None:
    stdout.print(f"devnet up: chain {state.chain_id}")
    stdout.print(f"  dashboard          {state.api_url}/  (log in with the API token: warden devnet env)")
    stdout.print(f"  RPC                {state.rpc_url}")
    stdout.print(f"  KMS                {state.kms_url}  (dstack {state.kms_version})")
    stdout.print(f"  auth webhook       {state.webhook_url}")
    stdout.print(f"  control plane API  {state.api_url}/api  (OpenAPI: {state.api_url}/api/openapi.json)")
    stdout.print(f"  DstackKms          {state.kms}")
    for name, address in state.apps.items():
        stdout.print(f"  app {name:<14} {address}")
    stdout.print(f"  nodes              {', '.join(state.nodes)}")
    if state.pccs_url:
        stdout.print(f"  PCCS               {state.pccs_url}")
    for name, cvm in state.cvms.items():
        stdout.print(f"  cvm {name:<24} on {cvm.node} ({cvm.platform})")
        _print_guest_api(cvm)
    stdout.print(f"  state              {state_file()}")
    demo = next(iter(state.apps), "shared-key-demo")
    stdout.print("next commands to try:")
    stdout.print('  eval "$(warden devnet env)"')
    stdout.print(f"  warden allow-devices list {demo}-1")
    stdout.print("  warden nodes ls")
    stdout.print("  warden devnet node update-firmware prod6 && warden devnet cvm reboot shared-key-demo-2")
    stdout.print(f"  warden devnet cvm sign {demo}-1 hello")
    first = next(iter(state.cvms.values()), None)
    if first is not None and first.guest_url:
        stdout.print(f"  DSTACK_SIMULATOR_ENDPOINT={first.guest_url} python your_app.py  (the unmodified dstack-sdk)")


def _print_guest_api(cvm: DevnetCvm) -> None:
    if cvm.guest_url:
        where = f"{cvm.guest_url}" + (f"  or  {cvm.guest_socket}" if cvm.guest_socket else "")
        stdout.print(f"      guest API {where}", markup=False, soft_wrap=True)


PortOption = Annotated[
    int, flag("--port", "RPC port (a free one when busy; 0: every service on a free port).", metavar="PORT")
]
BlockTimeOption = Annotated[
    float | None, flag("--block-time", "Seconds per block (default: mine each transaction at once).", metavar="SECONDS")
]


@app.command("up")
def devnet_up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Leave it running in the background.")] = False,
    port: PortOption = 8545,
    block_time: BlockTimeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Start anvil, the contracts, the KMS, the auth webhook, the control plane + dashboard and the demo
    fleet (nodes prod5, prod6, prod9, hosted; three CVMs of shared-key-demo); stay up until Ctrl-C.

    Everything is kept under $WARDEN_HOME (default ./.warden), so the next `up` is the same devnet.

    Example: warden devnet up --detach && eval "$(warden devnet env)"
    """
    from warden.devnet.stack import up

    began = time.monotonic()
    started = up(port=port, block_time=block_time, detach=detach, note=note)
    if started.anvil is None:
        note("the devnet is already running")
    else:
        restored = " (contracts restored)" if started.reused_contracts else ""
        note(f"ready in {time.monotonic() - began:.1f}s{restored}")
        for report in started.boots:
            outcome = "booted" if report.ok else f"refused: {report.reason or report.certificate_error}"
            note(f"  {report.cvm} on {report.node}: {outcome}")
    emit(json_out, started.state.status_json(True, _cvm_statuses(started.state)),
         lambda: _print_started(started.state))  # fmt: skip
    if detach or started.anvil is None:
        if started.anvil is not None:
            note("running in the background; stop it with `warden devnet down`")
        return
    # SIGTERM from `warden devnet down` or a supervisor stops us like Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    anvil, services = started.anvil.process, started.services
    assert anvil is not None and services is not None
    try:
        note("press Ctrl-C to stop")
        while anvil.poll() is None and services.poll() is None:
            time.sleep(0.2)
        which = "anvil" if anvil.poll() is not None else "the services"
        note(f"{which} exited unexpectedly; see {warden_home()}/anvil.log and services.log")
        started.stop()
        raise typer.Exit(1)
    except KeyboardInterrupt:
        started.stop()
        note("devnet stopped; its state is kept for the next `warden devnet up`")


@app.command("down")
def devnet_down() -> None:
    """Stop the devnet started here (its state is kept).

    Example: warden devnet down
    """
    from warden.devnet.stack import down

    note("devnet stopped" if down() else "no devnet was running")


def _cvm_statuses(state: DevnetState) -> dict[str, str]:
    from warden.devnet.fleet import Paths, cvm_statuses

    return cvm_statuses(Paths(warden_home()))


@app.command("status")
def devnet_status(json_out: JsonOption = False) -> None:
    """Where everything is, whether it is running (exit 1 when not), and how each CVM is doing.

    Example: warden devnet status --json
    """
    from warden.devnet.stack import is_running, require_state

    state = require_state()
    running = is_running(state)
    statuses = _cvm_statuses(state)
    data = state.status_json(running, statuses)

    shown = {c["name"]: c["status"] for c in data["cvms"]}  # a stopped devnet runs no CVM

    def human() -> None:
        stdout.print(f"devnet {'running' if running else 'stopped'}: chain {state.chain_id} at {state.rpc_url}")
        stdout.print(f"  dashboard {state.api_url}/   KMS {state.kms_url} (dstack {state.kms_version})")
        if state.pccs_url:
            stdout.print(f"  PCCS {state.pccs_url}")
        stdout.print(f"  DstackKms {state.kms}")
        for name, address in state.apps.items():
            stdout.print(f"  app {name} {address}")
        for name, cvm in state.cvms.items():
            stdout.print(f"  cvm {name:<26} {cvm.node:<8} {shown[name]}")
            _print_guest_api(cvm)

    emit(json_out, data, human)
    if not running:
        raise typer.Exit(1)


def env_values(state: DevnetState) -> dict[str, str]:
    """The variables that point every other command at the devnet (those it has)."""
    values = {
        "ETH_RPC_URL": state.rpc_url,
        "PRIVATE_KEY": DEV_PRIVATE_KEY,  # anvil's public test key, not a secret
        "WARDEN_KMS": state.kms,
        "WARDEN_API_URL": state.api_url or "",
        "WARDEN_API_TOKEN": state.api_token or "",
        "WARDEN_PCCS_URL": state.pccs_url or "",  # `attest inspect` then verifies devnet quotes by default
    }
    return {name: value for name, value in values.items() if value}


def env_lines(state: DevnetState) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in env_values(state).items()]


@app.command("env")
def devnet_env(json_out: JsonOption = False) -> None:
    """Print `export …` lines so every other command talks to the devnet (its chain, KMS and control plane);
    with --json, the same variables as one JSON object.

    Example: eval "$(warden devnet env)"
    """
    from warden.devnet.stack import require_state

    state = require_state()

    def human() -> None:
        for line in env_lines(state):
            stdout.print(line, markup=False, soft_wrap=True)

    emit(json_out, env_values(state), human)


VersionOption = Annotated[str, flag("--version", "0.5.4 (CSR API v1 only) or 0.5.7 (v1 and v2).", metavar="VERSION")]


@app.command("kms")
def devnet_kms(
    version: VersionOption,
    json_out: JsonOption = False,
) -> None:
    """Make the devnet KMS behave like a dstack KMS of that release (which CSR API versions SignCert takes).

    Example: warden devnet kms --version 0.5.4
    """
    from warden.devnet.fleet import Paths, set_kms_version
    from warden.devnet.stack import require_state

    state = require_state()
    settings = set_kms_version(Paths(warden_home()), state, version)
    data = {"kms_url": state.kms_url, "version": version, "csr_api_versions": list(settings.csr_api_versions)}
    emit(json_out, data, lambda: stdout.print(
        f"devnet KMS now acts as dstack {version}: SignCert accepts CSR API "
        + ", ".join(f"v{v}" for v in settings.csr_api_versions)
    ))  # fmt: skip


@node_app.command("update-firmware")
def node_update_firmware(name: Annotated[str, typer.Argument(metavar="NAME")], json_out: JsonOption = False) -> None:
    """A BIOS/microcode update: the node's PPID, hence its device_id, changes; its agent reports the new
    identity to the control plane, which records it and flags the CVMs the app's allowlist now strands.

    Example: warden devnet node update-firmware prod6
    """
    from warden.chain.inputs import hex0x
    from warden.devnet.cvms import update_firmware
    from warden.devnet.fleet import Paths
    from warden.devnet.stack import require_state

    state = require_state()
    update = update_firmware(Paths(warden_home()), state, name)

    def human() -> None:
        old = hex0x(update.old_device_id) if update.old_device_id else "-"
        stdout.print(f"{name}: device_id {old} -> {hex0x(update.device_id)}")
        for cvm in update.flagged_cvms:
            stdout.print(f"  {cvm}: its app does not allow the new device id; it will be refused keys on reboot")
        # a replica not booted yet is in the inventory only (devnet.json learns it on its first boot)
        apps = (state.cvms[c].app for c in update.flagged_cvms if c in state.cvms)
        for app_address in dict.fromkeys(state.apps[a] for a in apps):
            stdout.print(f"fix: warden allow-devices add {app_address} {name} --wait")

    emit(json_out, update.as_json(), human)


CvmName = Annotated[str, typer.Argument(metavar="NAME", help="A demo CVM, e.g. shared-key-demo-1.")]


DockerComposeOption = Annotated[
    Path | None, flag("--docker-compose", "Deploy this release first (through the CVM's deploy path).", metavar="FILE")
]
GuestVersionOption = Annotated[
    str | None, flag("--guest-version", "Run this dstack guest (e.g. 0.5.7).", metavar="VERSION")
]


@cvm_app.command("boot")
def cvm_boot(
    name: CvmName,
    docker_compose: DockerComposeOption = None,
    guest_version: GuestVersionOption = None,
    fallback_to_v1: Annotated[
        bool | None,
        typer.Option("--fallback-to-v1/--no-fallback-to-v1", help="Retry SignCert with CSR API v1 when v2 is refused."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Boot (or reboot) a demo CVM: it asks the KMS for its keys and a gateway certificate.

    Exit 1 with the KMS's reason (e.g. `Boot denied: Device not allowed`) when it is refused.

    Example: warden devnet cvm reboot shared-key-demo-2
    """
    from warden.chain.inputs import hex0x
    from warden.devnet.cvms import boot
    from warden.devnet.fleet import Paths
    from warden.devnet.stack import require_state

    release = None
    if docker_compose is not None:
        try:
            release = docker_compose.read_text()
        except OSError as exc:
            raise BadInput(f"cannot read {docker_compose}: {exc.strerror}") from None
    report = boot(Paths(warden_home()), require_state(), name, docker_compose=release, guest_version=guest_version,
                  fallback_to_v1=fallback_to_v1)  # fmt: skip

    def human() -> None:
        stdout.print(
            f"{name} on {report.node} (device {hex0x(report.device_id)}, compose {hex0x(report.compose_hash)})"
        )
        stdout.print(f"  app keys: {'released' if report.keys else 'refused'}")
        if report.keys and report.gateway:
            cert = f"issued (CSR API v{report.csr_api_version})" if report.certificate else "refused"
            stdout.print(f"  gateway certificate: {cert}")
        elif report.keys:
            stdout.print("  gateway certificate: not asked for (the manifest disables the gateway)")

    emit(json_out, report.as_json(), human)
    if not report.keys:
        raise OperationFailed(f"{name} was refused its keys by the KMS: {report.reason}")
    if not report.ok:
        hint = ""
        if report.certificate_error and "Unsupported API version: 2" in report.certificate_error:
            hint = " (the KMS is older than the guest: reboot with --fallback-to-v1, or upgrade the KMS)"
        raise OperationFailed(f"{name} got its keys but no gateway certificate: {report.certificate_error}{hint}")


cvm_app.command(
    "reboot", help="Same as `boot`: reboot a demo CVM.\n\nExample: warden devnet cvm reboot shared-key-demo-2"
)(cvm_boot)


@cvm_app.command("stop")
def cvm_stop(name: CvmName, json_out: JsonOption = False) -> None:
    """Stop a demo CVM: its guest API answers 503 (no keys, no quotes) until `warden devnet cvm boot NAME`.

    Example: warden devnet cvm stop shared-key-demo-2
    """
    from warden.devnet.cvms import stop
    from warden.devnet.fleet import Paths
    from warden.devnet.stack import require_state

    stop(Paths(warden_home()), require_state(), name)
    emit(json_out, {"cvm": name, "status": "stopped"}, lambda: stdout.print(f"{name} stopped"))


@cvm_app.command("sign")
def cvm_sign(
    name: CvmName,
    message: Annotated[str, typer.Argument(metavar="MESSAGE")],
    json_out: JsonOption = False,
) -> None:
    """Sign MESSAGE (EIP-191) with the CVM's getKey("/shared-demo", "ethereum") key: every CVM of one app
    derives the same key, so their signatures are byte-identical.

    Example: warden devnet cvm sign shared-key-demo-1 hello --json
    """
    from warden.devnet.cvms import sign
    from warden.devnet.fleet import Paths
    from warden.devnet.stack import require_state

    signed = sign(Paths(warden_home()), require_state(), name, message)
    emit(json_out, signed, lambda: stdout.print(f"address   {signed['address']}\nsignature {signed['signature']}"))
