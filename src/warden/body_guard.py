"""One ASGI middleware in front of every warden HTTP service: bounded bodies, bounded JSON, safe headers.

Before a route (or FastAPI's own body parsing) sees a request, its body is read up to the service's limit
(larger: 413) and, when it is JSON, its nesting is checked without recursion (deeper than
`warden.jsonbody.MAX_DEPTH`: 400). Both answers use the service's own error body, and the process keeps
serving. Responses get the headers the service asks for (nosniff, no-store) unless a route set them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from warden.jsonbody import MAX_DEPTH, cap_recursion_limit, nests_deeper_than

log = logging.getLogger("warden.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# (HTTP status, what was wrong) -> the JSON body this service answers errors with
ErrorBody = Callable[[int, str], Any]

API_HEADERS: Mapping[str, str] = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def detail_body(_status: int, message: str) -> Any:
    """FastAPI's error shape, `{"detail": …}`."""
    return {"detail": message}


def error_key_body(_status: int, message: str) -> Any:
    """The `{"error": …}` shape of the KMS and the guest agent."""
    return {"error": message}


class BodyGuard:
    """Wraps an ASGI app; see the module docstring.

    `always_json`: the service parses every body as JSON whatever its Content-Type (dstack's pRPC routes do).
    `headers`: added to every response under one of `header_prefixes` that does not set them itself;
    `all_paths_headers` likewise to every response whatever its path.
    """

    def __init__(
        self,
        app: AsgiApp,
        *,
        max_bytes: int,
        error_body: ErrorBody = detail_body,
        always_json: bool = False,
        max_depth: int = MAX_DEPTH,
        headers: Mapping[str, str] = API_HEADERS,
        header_prefixes: tuple[str, ...] = ("/",),
        all_paths_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body
        self.always_json = always_json
        self.max_depth = max_depth
        self.header_prefixes = header_prefixes
        everywhere = {k.lower(): v for k, v in (all_paths_headers or {}).items()}
        under_prefixes = everywhere | {k.lower(): v for k, v in headers.items()}
        self.headers = [(k.encode(), v.encode()) for k, v in under_prefixes.items()]
        self.all_paths_headers = [(k.encode(), v.encode()) for k, v in everywhere.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap_recursion_limit()  # a library imported since the last request (py_ecc) may have raised it
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        under_prefix = str(scope.get("path", "")).startswith(self.header_prefixes)
        headers = self.headers if under_prefix else self.all_paths_headers
        if headers:
            send = _with_headers(send, headers)
        # every method: the KMS's pRPC routes also read the body of a GET
        declared = _header(scope, b"content-length")
        if declared is not None and not _fits(declared, self.max_bytes):
            await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, 413, f"request body over {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and self._is_json(scope) and nests_deeper_than(body, self.max_depth):
            await self._refuse(send, 400, f"JSON nested deeper than {self.max_depth} levels")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _is_json(self, scope: Scope) -> bool:
        if self.always_json:
            return True
        content_type = (_header(scope, b"content-type") or "").lower()
        return "json" in content_type or not content_type

    async def _refuse(self, send: Send, status: int, reason: str) -> None:
        log.info("refused a request: %s", reason)
        payload = json.dumps(self.error_body(status, reason)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),  # the rest of an oversized body is not read
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in headers if name not in present]
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return send_with_headers


def _fits(declared: str, max_bytes: int) -> bool:
    """A Content-Length within the limit; anything but ASCII digits is refused (int() of '²' or of 5,000 digits
    raises)."""
    return declared.isascii() and declared.isdigit() and len(declared) <= 18 and int(declared) <= max_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
