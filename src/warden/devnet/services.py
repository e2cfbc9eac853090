"""The devnet's services in one background process: the KMS, the auth webhook, the control plane, a
PCCS-compatible collateral API for the mock Intel PKI, and each CVM's dstack guest API (on its own port
and unix socket, see `warden.devnet.guest_endpoints`).

Started by `warden devnet up` as `python -m warden.devnet.services HOME`; it reads devnet.json for its
ports and stops on SIGTERM. `warden devnet kms --version` writes HOME/kms-version; the KMS picks the
new version up on its next request (no restart, so a runbook step is one command).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.devnet.fleet import Paths, attestation_policy, control_plane, kms_settings, load_pki, workspace
from warden.devnet.guest_endpoints import GuestEndpoint, bind_guest_endpoints
from warden.devnet.state import load_state
from warden.kms.authorization import Authorizer
from warden.kms.keystore import load_or_generate_root_keys
from warden.kms.server import create_kms_app
from warden.kms.service import KmsService
from warden.kms.webhook import create_webhook_app
from warden.tee.pccs import create_pccs_app
from warden.web.app import create_control_plane_app


class KmsVersionWatch:
    """Before each request, adopt the KMS version in HOME/kms-version if the file changed."""

    def __init__(self, app: ASGIApp, service: KmsService, path: Path) -> None:
        self.app, self.service, self.path = app, service, path
        self.seen: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.refresh()
        await self.app(scope, receive, send)

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self.seen:
            self.seen = mtime
            self.service.settings = kms_settings(self.path.read_text().strip())


def port_of(url: str | None) -> int:
    if not url:
        raise SystemExit("devnet.json lacks a service URL; run `warden devnet up`")
    port = urlsplit(url).port
    assert port is not None
    return port


def quiet_server(app: ASGIApp, port: int = 0) -> uvicorn.Server:
    """A server on 127.0.0.1:port (or on the sockets later given to `serve`) that logs only warnings."""
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))


async def warm_up(endpoints: list[GuestEndpoint], kms: uvicorn.Server) -> None:
    """Boot every CVM's guest once the KMS listens, so first requests do not wait for a boot."""
    while not kms.started and not kms.should_exit:
        await asyncio.sleep(0.05)
    for endpoint in endpoints:
        await asyncio.to_thread(endpoint.guest.warm)


async def serve_all(home: Path) -> None:
    state = load_state(home)
    if state is None:
        raise SystemExit(f"no devnet.json in {home}")
    paths = Paths(home)
    pki = load_pki(paths)
    chain = Chain.connect(state.rpc_url, fail_fast=True)  # if anvil dies, deny at once rather than retry
    registry = KmsRegistry(chain, state.kms)
    keys, _ = load_or_generate_root_keys(paths.kms_keys)
    service = KmsService(keys, Authorizer(registry), attestation_policy(pki), kms_settings(state.kms_version))
    kms_app = KmsVersionWatch(create_kms_app(service), service, paths.kms_version)
    webhook = create_webhook_app(Authorizer(KmsRegistry(chain, state.kms)))
    plane = control_plane(paths, state, pki)
    ref = workspace(plane)
    guests = bind_guest_endpoints(paths, state, lambda name: plane.fleet.find_cvm(ref, name))
    kms_server = quiet_server(kms_app, port_of(state.kms_url))
    servers = [
        kms_server,
        quiet_server(webhook, port_of(state.webhook_url)),
        quiet_server(create_control_plane_app(plane, watch_every_seconds=1.0), port_of(state.api_url)),
    ]
    if state.pccs_url:  # None in a devnet.json from before the PCCS: the next `warden devnet up` assigns it
        servers.append(quiet_server(create_pccs_app(pki), port_of(state.pccs_url)))
    # each server with the sockets it listens on (None: it binds its own host and port)
    served: list[tuple[uvicorn.Server, list[socket.socket] | None]] = [(server, None) for server in servers]
    served += [(quiet_server(guest.app), guest.listeners) for guest in guests]

    def stop() -> None:
        for server, _ in served:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    for server, _ in served:
        # one handler for all of them (ours, above), not several servers fighting over SIGTERM
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    warming = asyncio.create_task(warm_up(guests, kms_server))
    try:
        await asyncio.gather(*(server.serve(sockets=sockets) for server, sockets in served))
    finally:
        warming.cancel()
        for guest in guests:
            guest.close()
        plane.close()
        chain.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m warden.devnet.services HOME")
    asyncio.run(serve_all(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
