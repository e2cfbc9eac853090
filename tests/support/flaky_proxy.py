"""A real HTTP JSON-RPC proxy on 127.0.0.1 that forwards to a node and injects faults on demand.

Faults, one per HTTP request:

- ``"pass"``: forward upstream and return the answer unchanged
- ``"429"``, ``"500"``, ``"502"``, ``"503"``: answer that HTTP status with a plain-text body, forward nothing
- ``"hang"``: read the request, wait `hang_seconds` (longer than any client timeout), close without answering
- ``"drop"``: read the request and close the connection without answering, forward nothing
- ``"lose"``: forward upstream (the node executes it), then close without passing the answer back
- ``"reject"``: answer HTTP 200 with a JSON-RPC error (`reject_message`, code -32000), forward nothing
- ``"range"`` (recorded only): an ``eth_getLogs`` refused by the `max_log_range` rule

Which fault applies: the scripted queue first (`script`), then a per-method rule (`fail_method`), then the
default action. Every request is recorded with its JSON-RPC method(s) and the fault applied.

`delay_seconds` makes a slow but live node: every forwarded request waits that long first. `port` binds a
given port (e.g. one a service was pointed at while nothing listened there) instead of a free one.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Action = Literal["pass", "429", "500", "502", "503", "hang", "drop", "lose", "reject"]
STATUS_ACTIONS = {"429": 429, "500": 500, "502": 502, "503": 503}


@dataclass(frozen=True)
class ProxyRecord:
    """One HTTP request the proxy received."""

    methods: tuple[str, ...]
    fault: str
    payload: Any


@dataclass
class _MethodRule:
    method: str
    action: Action
    after: int
    times: int | None
    seen: int = 0


class FlakyProxy:
    """Use as a context manager; `url` is where clients connect (any path is accepted)."""

    def __init__(
        self,
        upstream: str,
        *,
        default: Action = "pass",
        max_log_range: int | None = None,
        hang_seconds: float = 10.0,
        reject_message: str = "rejected by injected fault",
        delay_seconds: float = 0.0,
        port: int = 0,
    ) -> None:
        self.upstream = upstream
        self.delay_seconds = delay_seconds
        self.default: Action = default
        self.max_log_range = max_log_range
        self.hang_seconds = hang_seconds
        self.reject_message = reject_message
        self.records: list[ProxyRecord] = []
        self._queue: deque[Action] = deque()
        self._rules: list[_MethodRule] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="flaky-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- configuration -------------------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        """Faults for the next requests, one per request, in order; later requests use the rules."""
        with self._lock:
            self._queue.extend(actions)

    def fail_method(self, method: str, action: Action, *, after: int = 0, times: int | None = None) -> None:
        """Let `after` requests carrying `method` through, then apply `action` to the next `times` of them
        (every later one when `times` is None)."""
        with self._lock:
            self._rules.append(_MethodRule(method, action, after, times))

    # -- inspection ----------------------------------------------------------------------------
    def requests_for(self, method: str) -> list[ProxyRecord]:
        with self._lock:
            return [r for r in self.records if method in r.methods]

    def faults(self) -> list[str]:
        with self._lock:
            return [r.fault for r in self.records]

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving, release hanging handlers and wait for every thread to finish."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        self._thread.join()

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request handling (called from handler threads) -----------------------------------------
    def _choose(self, methods: tuple[str, ...]) -> Action:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            for rule in self._rules:
                if rule.method in methods:
                    rule.seen += 1
                    faulted = rule.seen - rule.after
                    if faulted > 0 and (rule.times is None or faulted <= rule.times):
                        return rule.action
            return self.default

    def _record(self, methods: tuple[str, ...], fault: str, payload: Any) -> None:
        with self._lock:
            self.records.append(ProxyRecord(methods, fault, payload))

    def _refusal(self, item: Any) -> dict[str, Any] | None:
        """The JSON-RPC error answer for an eth_getLogs over too wide a range, else None."""
        if self.max_log_range is None or not isinstance(item, dict) or item.get("method") != "eth_getLogs":
            return None
        params = item.get("params") or [{}]
        query = params[0] if isinstance(params[0], dict) else {}
        try:
            width = int(str(query["toBlock"]), 16) - int(str(query["fromBlock"]), 16) + 1
        except (KeyError, ValueError):
            return None  # block tags ("latest") are not checked
        if width <= self.max_log_range:
            return None
        message = f"query exceeds max block range {self.max_log_range}"
        return {"jsonrpc": "2.0", "id": item.get("id"), "error": {"code": -32005, "message": message}}

    def _rejection(self, payload: Any) -> Any:
        def error(item: Any) -> dict[str, Any]:
            request_id = item.get("id") if isinstance(item, dict) else None
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32000, "message": self.reject_message},
            }

        return [error(item) for item in payload] if isinstance(payload, list) else error(payload)

    def _forward(self, payload: Any) -> bytes:
        if self.delay_seconds:
            self._closing.wait(self.delay_seconds)
        request = urllib.request.Request(
            self.upstream,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body: bytes = response.read()
            return body

    def _answer(self, payload: Any) -> tuple[bytes, bool]:
        """The body to send back and whether the range rule refused something."""
        items = payload if isinstance(payload, list) else [payload]
        refusals = {i: r for i, r in enumerate(self._refusal(item) for item in items) if r is not None}
        if not refusals:
            return self._forward(payload), False
        if not isinstance(payload, list):
            return json.dumps(refusals[0]).encode(), True
        rest = [item for i, item in enumerate(items) if i not in refusals]
        answers: list[Any] = json.loads(self._forward(rest)) if rest else []
        return json.dumps([*answers, *refusals.values()]).encode(), True


def _methods_of(payload: Any) -> tuple[str, ...]:
    items = payload if isinstance(payload, list) else [payload]
    return tuple(str(item.get("method", "")) for item in items if isinstance(item, dict))


def _handler_for(proxy: FlakyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 30  # a client that never sends its body cannot hold a thread forever

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = None
            methods = _methods_of(payload)
            action = proxy._choose(methods)
            if action in STATUS_ACTIONS:
                proxy._record(methods, action, payload)
                self._reply(STATUS_ACTIONS[action], b"injected fault", "text/plain")
                return
            if action == "reject":
                proxy._record(methods, action, payload)
                self._reply(200, json.dumps(proxy._rejection(payload)).encode(), "application/json")
                return
            if action in ("hang", "drop"):
                proxy._record(methods, action, payload)
                if action == "hang":
                    proxy._closing.wait(proxy.hang_seconds)
                self.close_connection = True
                return
            answer, refused = proxy._answer(payload)
            proxy._record(methods, "range" if refused and action == "pass" else action, payload)
            if action == "lose":
                self.close_connection = True
                return
            self._reply(200, answer, "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a delayed answer): nobody to tell

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
