"""A webhook receiver on 127.0.0.1 for the delivery tests: records every request; answers from a script
(an HTTP status, or "hang" to answer only after the client has given up), then 200."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.support.http_server import serve

HANG_SECONDS = 1.5  # longer than the deliverer's timeout in these tests (0.3 s)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)  # every request, answered or not
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@contextmanager
def receiver(*script: int | str) -> Iterator[Receiver]:
    state = Receiver(script=list(script))

    async def hook(request: Request) -> Response:
        body = await request.body()
        with state.lock:
            state.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
            step = state.script.pop(0) if state.script else 200
        if step == "hang":
            await asyncio.sleep(HANG_SECONDS)
            return PlainTextResponse("too late", status_code=200)
        return PlainTextResponse("ok" if step == 200 else "no", status_code=int(step))

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve(app) as base:
        state.url = base + "/hook"
        yield state
