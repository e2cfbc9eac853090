"""`warden auth …`: the dstack-compatible auth webhook backed by a DstackKms, and a dry run of its decisions."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from warden.chain.connection import chain_name
from warden.cli.common import JsonOption, WorkersOption, emit, flag, new_app, stdout
from warden.cli.kms import open_kms_for_service, open_kms_source, service_log_config
from warden.cli.options import ChainOptions, KmsOptions, ServiceOptions, grouped
from warden.errors import BadInput, OperationFailed
from warden.kms.authorization import Authorizer, describe, public_endpoint

app = new_app("auth", "The auth webhook a dstack KMS asks before releasing keys (dstack auth-eth compatible).")
app.info.epilog = (
    "\b\nExample: warden auth check --boot-info boot.json --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
)

DecisionTimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", help="Deny (fail closed) when the chain has not answered by then."),
]


SERVE_SPEC_ENV = "WARDEN_AUTH_SERVE_SPEC"  # how `auth serve --workers N` hands its resolved options to each worker


def auth_worker_app() -> Any:
    """One worker of `auth serve --workers N` (uvicorn's factory): its own chain connection and authorizer."""
    from warden.kms.webhook import create_webhook_app

    spec = json.loads(os.environ[SERVE_SPEC_ENV])
    source = open_kms_source(spec["rpc_url"], spec["chain_id"], spec["kms"], timeout=spec["timeout"])
    return create_webhook_app(Authorizer(source, timeout=spec["timeout"]))


@app.command("serve")
@grouped
def serve(
    service: ServiceOptions,
    timeout: DecisionTimeoutOption = 5.0,
    workers: WorkersOption = None,
) -> None:
    """Serve POST /bootAuth/app, POST /bootAuth/kms and GET / from a DstackKms, until interrupted.

    Every decision is read from the chain when asked (no cache); when the chain cannot answer the
    webhook denies. It starts even while the RPC is down (denying at once until the RPC answers, then
    recovering by itself). Point the KMS at it with `[core.auth_api] type = "webhook"` and its URL.

    \b
    Example: warden auth serve --port 8000 --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0 --rpc-url http://127.0.0.1:8545
    """
    # imported here: FastAPI and uvicorn would slow every other warden command down
    import uvicorn

    from warden.kms.webhook import create_webhook_app

    host, port = service.host, service.port
    if not 0 <= port <= 65535:
        raise BadInput(f"invalid --port {port}: expected 0-65535")
    if timeout <= 0:
        raise BadInput("--timeout must be positive")
    processes = workers if workers is not None else (os.cpu_count() or 1)
    if processes < 1:
        raise BadInput(f"invalid --workers {processes}: at least 1")
    source = open_kms_for_service(service.network, service.kms, timeout=timeout)
    try:
        sock = _listen(host, port)
    except BaseException:
        source.close()
        raise
    authorizer = Authorizer(source, timeout=timeout)
    if processes > 1:
        spec = {"rpc_url": source.rpc.url, "chain_id": source.chain_id, "kms": source.address, "timeout": timeout}
        os.environ[SERVE_SPEC_ENV] = json.dumps(spec)
        config = uvicorn.Config("warden.cli.auth:auth_worker_app", factory=True, workers=processes,
                                log_config=service_log_config())  # fmt: skip
    else:
        config = uvicorn.Config(create_webhook_app(authorizer), log_config=service_log_config())
    server = uvicorn.Server(config)
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    on_chain = "on chain " + chain_name(source.chain_id) if source.chain_id is not None else "(chain not known yet)"
    stdout.print(
        f"auth webhook for DstackKms {source.address} {on_chain} via {public_endpoint(source.rpc.url)}",
        markup=False,
    )
    stdout.print(f"listening on http://{shown_host}:{bound_port}  (POST /bootAuth/app, /bootAuth/kms; GET /)"
                 + (f"; {processes} workers" if processes > 1 else ""))  # fmt: skip
    sys.stdout.flush()
    try:
        if processes > 1:
            from uvicorn.supervisors.multiprocess import Multiprocess

            source.close()  # the parent only supervises: each worker asks the chain itself
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the server is meant to stop; uvicorn has shut down cleanly by now
    finally:
        authorizer.close()
        sock.close()
        source.close()


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BadInput(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OperationFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


BootInfoOption = Annotated[
    Path,
    flag(
        "--boot-info",
        "BootInfo JSON as the KMS posts it (camelCase, hex with or without 0x); - reads stdin.",
        metavar="FILE",
    ),
]
KmsBootFlag = Annotated[bool, flag("--kms-boot", "Ask isKmsAllowed (a KMS instance booting) instead of isAppAllowed.")]


@app.command("check")
@grouped
def check(
    boot_info: BootInfoOption,
    kms: KmsOptions,
    network: ChainOptions,
    kms_boot: KmsBootFlag = False,
    timeout: DecisionTimeoutOption = 5.0,
    json_out: JsonOption = False,
) -> None:
    """Run the webhook's decision for one BootInfo file without serving anything; exit 1 when denied.

    \b
    Example: warden auth check --boot-info boot.json --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0 --json
    """
    from warden.kms.webhook import parse_boot_request

    if timeout <= 0:
        raise BadInput("--timeout must be positive")
    data_in = _read_json(boot_info)
    try:
        boot = parse_boot_request(data_in)
    except ValueError as exc:
        raise BadInput(f"boot info {boot_info}: {exc}") from None
    registry = network.kms(kms)
    with Authorizer(registry, timeout=timeout) as authorizer:
        decision = authorizer.authorize_kms(boot) if kms_boot else authorizer.authorize_app(boot)
    data = {
        **describe(decision),
        "check": "kms" if kms_boot else "app",
        "app_id": "0x" + boot.app_id.hex(),
        "kms": registry.address,
        "chain_id": registry.chain.chain_id,
    }

    def human() -> None:
        what = "KMS boot" if kms_boot else f"app 0x{boot.app_id.hex()}"
        verdict = "allowed" if decision.allowed else f"denied: {decision.reason}"
        stdout.print(f"{verdict}  ({what}, DstackKms {registry.address})", markup=False)
        if decision.gateway_app_id:
            stdout.print(f"gateway app id: {decision.gateway_app_id}", markup=False)

    emit(json_out, data, human)
    if not decision.allowed:
        raise typer.Exit(1)


def _read_json(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read boot info {path}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"boot info {path} is not JSON: {exc}") from None
