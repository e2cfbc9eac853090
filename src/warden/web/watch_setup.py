"""Wire watching into a control-plane app: the /api/alerts and /metrics routes, and (when asked) the
watcher's background loop, started with the app and stopped with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from warden.watch.delivery import Deliverer
from warden.watch.loop import DEFAULT_EVERY_SECONDS, WatchLoop
from warden.watch.store import AlertStore
from warden.watch.watcher import Watcher
from warden.web import alerts_api, alerts_page, metrics_api
from warden.web.plane import ControlPlane


def watcher_for(plane: ControlPlane, store: AlertStore, deliverer: Deliverer) -> Watcher:
    return Watcher(plane.fleet, plane, store, deliverer)


def install_watch(app: FastAPI, plane: ControlPlane, *, every_seconds: float | None = DEFAULT_EVERY_SECONDS) -> None:
    """Add the alert and metrics routes and the dashboard's Alerts page; with `every_seconds`, run a watcher
    pass that often while the app runs (None: no loop, e.g. in tests that run passes themselves)."""
    app.include_router(alerts_api.router)
    app.include_router(metrics_api.router)
    app.include_router(alerts_page.router)
    store = app.state.alert_store = plane.alert_store()
    sender = app.state.deliverer = Deliverer(store)
    if every_seconds is None:
        return
    previous: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        loop = app.state.watch_loop = WatchLoop(watcher_for(plane, store, sender), every_seconds).start()
        try:
            async with previous(asgi) as state:
                yield state
        finally:
            await run_in_threadpool(loop.stop)
            sender.close()

    app.router.lifespan_context = lifespan
