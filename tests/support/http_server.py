"""Serve an ASGI application with uvicorn on 127.0.0.1 (a free port) in a background thread.

    with serve(app) as base_url:
        httpx.get(base_url + "/")

The socket is bound before the thread starts, so the port is known at once; the block is entered only
after the application's startup has run. Leaving it stops the server (idle keep-alive connections are
closed, requests in flight get `graceful_seconds`) and joins the thread. Extra keyword arguments go to
`uvicorn.Config` (e.g. `ssl_keyfile=…, ssl_certfile=…`, which also make the URL https).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT = 10.0


@contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1", graceful_seconds: int = 2, **options: Any) -> Iterator[str]:
    """Yield the server's base URL (`http://127.0.0.1:PORT`, no trailing slash)."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so (else ~40 ms per response)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    settings: dict[str, Any] = {
        "log_config": None,  # leave logging alone: records reach pytest's caplog
        "access_log": False,
        "timeout_graceful_shutdown": graceful_seconds,
        **options,
    }
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    scheme = "https" if settings.get("ssl_certfile") else "http"
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # a startup failure is a SystemExit in this thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {failure[0] if failure else 'its thread ended'!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {STARTUP_TIMEOUT:g}s")
            time.sleep(0.005)
        yield f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=graceful_seconds + 5)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")
