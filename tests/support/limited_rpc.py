"""A real HTTP JSON-RPC proxy on 127.0.0.1 in front of a node, imposing the limits real providers impose.

- `max_log_range`: eth_getLogs over more blocks is answered with -32005 "block range is too large"
- `max_batch`: a batch with more calls is answered with one error object (-32600)
- `batches=False`: every batch is refused (-32600 "batch requests are not supported")
- `throttle_every`: every Nth HTTP request is answered with HTTP 429, nothing forwarded
- `state_from`: eth_getCode for an older block fails like a pruned node ("missing trie node")
- `block_scale`: present a chain `block_scale` times longer (node block n is presented as n * scale; the
  blocks in between are empty), so a short anvil chain looks like months of a real one

It counts HTTP requests, JSON-RPC calls by method, and forwarded eth_getLogs.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LimitedRpc:
    """Use as a context manager; `url` is where clients connect."""

    def __init__(
        self,
        upstream: str,
        *,
        max_log_range: int | None = None,
        max_batch: int | None = None,
        batches: bool = True,
        throttle_every: int | None = None,
        state_from: int | None = None,
        block_scale: int = 1,
    ) -> None:
        self.upstream = upstream
        self.max_log_range = max_log_range
        self.max_batch = max_batch
        self.batches = batches
        self.throttle_every = throttle_every
        self.state_from = state_from
        self.block_scale = block_scale
        self.http_requests = 0
        self.throttled = 0
        self.calls: Counter[str] = Counter()
        self.blocks_asked: list[int] = []  # the numbers eth_getBlockByNumber was asked for
        self.log_ranges: list[tuple[int, int]] = []  # eth_getLogs forwarded (answered) upstream
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LimitedRpc:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.http_requests = self.throttled = 0
            self.calls.clear()
            self.blocks_asked.clear()
            self.log_ranges.clear()

    def answer(self, payload: Any) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one HTTP request."""
        with self._lock:
            self.http_requests += 1
            items = payload if isinstance(payload, list) else [payload]
            for item in items:
                self.calls[str(item.get("method"))] += 1
                if item.get("method") == "eth_getBlockByNumber" and str(item["params"][0]).startswith("0x"):
                    self.blocks_asked.append(int(item["params"][0], 16))
            if self.throttle_every and self.http_requests % self.throttle_every == 0:
                self.throttled += 1
                return 429, None
        if isinstance(payload, list):
            if not self.batches:
                return 200, _error(None, -32600, "batch requests are not supported")
            if self.max_batch is not None and len(payload) > self.max_batch:
                return 200, _error(None, -32600, f"batch size too large, max {self.max_batch}")
            return 200, [self._one(item) for item in payload]
        return 200, self._one(payload)

    def _one(self, request: dict[str, Any]) -> Any:
        if request.get("method") == "eth_getCode" and self.state_from is not None:
            block = request["params"][1]
            if block.startswith("0x") and int(block, 16) < self.state_from:
                return _error(request.get("id"), -32000, "missing trie node")
        if request.get("method") == "eth_getLogs" and self.max_log_range is not None:
            query = request["params"][0]
            low, high = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            if high - low + 1 > self.max_log_range:
                return _error(request.get("id"), -32005, "block range is too large")
            with self._lock:
                self.log_ranges.append((low, high))
        elif request.get("method") == "eth_getLogs":
            with self._lock:
                self.log_ranges.append((0, -1))
        return self._forward(request)

    def _forward(self, request: Any) -> Any:
        if self.block_scale != 1:
            return self._scaled(request)
        return self._upstream(request)

    def _scaled(self, request: dict[str, Any]) -> Any:
        scale, method, params = self.block_scale, request.get("method"), list(request.get("params", []))
        if method == "eth_getLogs":
            query = dict(params[0])
            low, high = -(-int(query["fromBlock"], 16) // scale), int(query["toBlock"], 16) // scale
            if low > high:
                return {"jsonrpc": "2.0", "id": request.get("id"), "result": []}
            query["fromBlock"], query["toBlock"] = hex(low), hex(high)
            reply = self._upstream({**request, "params": [query]})
            for log in reply.get("result") or []:
                log["blockNumber"] = hex(int(log["blockNumber"], 16) * scale)
            return reply
        index = {"eth_getCode": 1, "eth_call": 1, "eth_getBlockByNumber": 0}.get(str(method))
        if index is not None and isinstance(params[index], str) and params[index].startswith("0x"):
            params[index] = hex(int(params[index], 16) // scale)
        reply = self._upstream({**request, "params": params})
        if method == "eth_blockNumber" and "result" in reply:
            reply["result"] = hex(int(reply["result"], 16) * scale)
        if method == "eth_getBlockByNumber" and isinstance(reply.get("result"), dict) and params[0] != "0x0":
            reply["result"]["number"] = request["params"][0]
        return reply

    def _upstream(self, request: Any) -> Any:
        body = json.dumps(request).encode()
        upstream = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(upstream, timeout=60) as response:
            return json.loads(response.read())


def _error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def _handler_for(proxy: LimitedRpc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            status, body = proxy.answer(payload)
            data = b"too many requests" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if body is None else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
