"""The devnet's services in one background process: the KMS, the auth webhook and the control plane.

Started by `warden devnet up` as `python -m warden.devnet.services HOME`; it reads devnet.json for its
ports and stops on SIGTERM. `warden devnet kms --version` writes HOME/kms-version; the KMS picks the
new version up on its next request (no restart, so a runbook step is one command).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.devnet.fleet import Paths, attestation_policy, control_plane, kms_settings, load_pki
from warden.devnet.state import load_state
from warden.kms.authorization import Authorizer
from warden.kms.keystore import load_or_generate_root_keys
from warden.kms.server import create_kms_app
from warden.kms.service import KmsService
from warden.kms.webhook import create_webhook_app
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
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port_of(url), log_level="warning", access_log=False))
        for app, url in (
            (kms_app, state.kms_url),
            (webhook, state.webhook_url),
            (create_control_plane_app(plane), state.api_url),
        )
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    for server in servers:
        # one handler for all three (ours, above), not three servers fighting over SIGTERM
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        plane.close()
        chain.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m warden.devnet.services HOME")
    asyncio.run(serve_all(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
