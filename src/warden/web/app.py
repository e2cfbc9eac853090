"""The control plane as one ASGI app: the JSON API under /api (OpenAPI at /api/openapi.json) and the dashboard."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from warden import __version__
from warden.body_guard import API_HEADERS, BodyGuard
from warden.errors import WardenError
from warden.web import api, dashboard, probe_api
from warden.web.plane import ControlPlane
from warden.web.watch_setup import install_watch

MAX_BODY = 1 << 20  # node quotes are a few KiB, dashboard forms a few hundred bytes
EVERY_RESPONSE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


@asynccontextmanager
async def frozen_heap(_app: FastAPI) -> AsyncIterator[None]:
    """While serving, what was loaded at start (modules, ABIs, templates: ~150k objects) is out of the cyclic
    collector's way, so a full collection walks only what requests made: without this, every few page views
    of a large fleet paid a 100+ ms pause. Unfrozen at shutdown (then collectable as usual)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def create_control_plane_app(plane: ControlPlane, *, watch_every_seconds: float | None = None) -> FastAPI:
    """The control plane's API, dashboard, probe and alert routes and /metrics; with `watch_every_seconds`, the
    watcher (drift and allowlist alerts, webhook deliveries) runs that often while the app serves."""
    app = FastAPI(
        lifespan=frozen_heap,
        title="warden control plane",
        version=__version__,
        description="Fleet inventory, device-identity history, CVM placement and the merged device allowlist.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.plane = plane
    # the dashboard's pages set their own, stricter headers (warden.web.dashboard.SECURITY_HEADERS); the rest
    # (static files, error answers, the API docs) still may not be sniffed or framed
    app.add_middleware(BodyGuard, max_bytes=MAX_BODY, headers=API_HEADERS, header_prefixes=("/api", "/health"),
                       all_paths_headers=EVERY_RESPONSE_HEADERS)  # fmt: skip

    @app.exception_handler(WardenError)
    async def warden_error(_request: Request, exc: WardenError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(probe_api.router)
    install_watch(app, plane, every_seconds=watch_every_seconds)
    dashboard.install(app)  # pages, /static, HTML error pages
    return app
