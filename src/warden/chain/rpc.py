"""JSON-RPC transport: several endpoints with failover, retries with backoff, a timeout on every call.

Reads are retried on HTTP 429, 5xx, timeouts and refused connections, moving to the next endpoint
each time. A JSON-RPC error answer (a revert, a bad parameter) is the node's verdict and is never
retried. Sending a signed transaction is retried as well: the same raw bytes always carry the same
hash, so a second delivery cannot execute twice.

A long-running service passes `fail_fast=True`: when every endpoint refuses the connection the client
stops retrying at once and opens a circuit breaker (`warden.chain.circuit_breaker`), so calls fail in
microseconds while the RPC is down and the client recovers by itself when a background probe is answered.
One-shot commands keep the retries: a node that is restarting gets a few seconds to come back.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from warden.chain.circuit_breaker import CircuitBreaker, ProbeSchedule
from warden.errors import BadInput, OperationFailed

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class _RedactUrls(logging.Filter):
    """httpx logs every request with its full URL at INFO; RPC URLs often carry an API key in the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())


class RpcUnavailable(OperationFailed):
    """No endpoint answered, after retries and failover."""


class RpcRefused(RpcUnavailable):
    """Every endpoint refused the connection, now or recently (the circuit breaker is open): nothing was sent."""


class RpcError(OperationFailed):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None, method: str = "") -> None:
        super().__init__(f"{method}: {message}" if method else message)
        self.code = code
        self.rpc_message = message
        self.data = data


def redact_url(url: str) -> str:
    """Scheme, host and port only: RPC URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def parse_rpc_urls(text: str | Sequence[str]) -> list[str]:
    """Accept one URL, a comma-separated list, or a sequence; reject anything that is not http(s)."""
    items = [text] if isinstance(text, str) else list(text)
    urls = [u.strip() for item in items for u in item.split(",") if u.strip()]
    if not urls:
        raise BadInput("no RPC URL given: pass --rpc-url or set ETH_RPC_URL")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
        except ValueError as exc:
            raise BadInput(f"invalid RPC URL {url!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"invalid RPC URL {url!r}: expected http:// or https://")
    return urls


@dataclass
class RpcStats:
    """What the transport did; benchmarks print the request count."""

    requests: int = 0  # HTTP requests sent (a batch counts once)
    calls: int = 0  # JSON-RPC calls carried
    retries: int = 0
    failovers: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    fast_failures: int = 0  # calls refused without a network attempt (circuit breaker open)
    probes: int = 0  # background probes of a down RPC (not in `requests`)


class RpcClient:
    """A small synchronous JSON-RPC client over httpx, shared by every chain operation."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
        fail_fast: bool = False,
        retry_timeouts: bool = True,
        probe_schedule: ProbeSchedule | None = None,
    ) -> None:
        """`fail_fast`: open a circuit breaker when every endpoint refuses the connection (for services).
        `retry_timeouts=False`: a caller whose own deadline is `timeout` gains nothing from a second attempt."""
        self.urls = parse_rpc_urls(urls)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_timeouts = retry_timeouts
        self.stats = RpcStats()
        self._sleep = sleep
        self._active = 0  # index of the endpoint that answered last
        self._ids = itertools.count(1)
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers={"User-Agent": "warden"})
        self.breaker: CircuitBreaker | None = None
        if fail_fast:
            shown = ", ".join(redact_url(u) for u in self.urls)
            self.breaker = CircuitBreaker(self._probe, name=f"RPC {shown}", schedule=probe_schedule)

    def close(self) -> None:
        if self.breaker is not None:
            self.breaker.stop()
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The endpoint currently in use."""
        return self.urls[self._active]

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call; raises RpcError for an error answer, RpcUnavailable when nobody answers."""
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        reply = self._post(request, methods=[method])
        if not isinstance(reply, dict):
            raise RpcUnavailable(f"{method}: malformed answer from {redact_url(self.url)}")
        return _result_of(reply, method)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; each item is its result or the RpcError it raised."""
        if not calls:
            return []
        first = next(self._ids)
        requests = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)} for i, (m, p) in enumerate(calls)
        ]
        # keep ids unique for later calls
        for _ in range(len(calls) - 1):
            next(self._ids)
        replies = self._post(requests, methods=[m for m, _ in calls])
        if not isinstance(replies, list):
            # some nodes answer a batch they refuse with a single error object
            if isinstance(replies, dict) and "error" in replies:
                error = replies["error"] or {}
                raise RpcError(int(error.get("code", 0)), str(error.get("message", "")), None, "batch")
            raise RpcUnavailable(f"batch: malformed answer from {redact_url(self.url)}")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        out: list[Any] = []
        for req in requests:
            reply = by_id.get(req["id"])
            if reply is None:
                out.append(RpcUnavailable(f"{req['method']}: missing from batch answer"))
                continue
            try:
                out.append(_result_of(reply, str(req["method"])))
            except RpcError as exc:
                out.append(exc)
        return out

    def _post(self, payload: Any, methods: list[str]) -> Any:
        self.stats.calls += len(methods)
        for m in methods:
            self.stats.by_method[m] = self.stats.by_method.get(m, 0) + 1
        label = methods[0] if len(methods) == 1 else f"batch of {len(methods)}"
        if self.breaker is not None and not self.breaker.allow():
            self.stats.fast_failures += 1
            raise RpcRefused(
                f"{label}: RPC unavailable ({self.breaker.cause}, {self.breaker.open_for():.1f}s ago; "
                "re-probing in the background)"
            )
        attempts = self.retries + 1
        last_problem = ""
        refused: set[int] = set()  # endpoints that refused the connection during this call
        for attempt in range(attempts):
            index = self._active
            url = self.urls[index]
            self.stats.requests += 1
            try:
                response = self._http.post(url, json=payload)
            except httpx.TimeoutException:
                last_problem = f"timed out after {self.timeout:g}s"
                if not self.retry_timeouts:
                    break
            except httpx.ConnectError as exc:  # refused, DNS failure, unreachable: the node is not there
                last_problem = f"cannot connect ({type(exc).__name__})"
                if self.breaker is not None:
                    refused.add(index)
                    if len(refused) == len(self.urls):
                        self.breaker.trip(last_problem)
                        tried = ", ".join(redact_url(u) for u in self.urls)
                        raise RpcRefused(f"{label}: RPC unavailable ({last_problem}); tried {tried}") from None
                    # another endpoint may answer: move on at once, a refusal is not worth a backoff
                    self._active = (self._active + 1) % len(self.urls)
                    self.stats.failovers += 1
                    continue
            except httpx.TransportError as exc:
                last_problem = f"cannot connect ({type(exc).__name__})"
            else:
                if response.status_code in RETRYABLE_STATUS:
                    last_problem = f"HTTP {response.status_code}"
                elif response.status_code >= 400 and not _is_json(response):
                    raise RpcUnavailable(f"{label}: {redact_url(url)} answered HTTP {response.status_code}")
                else:
                    try:
                        return response.json()
                    except ValueError:
                        last_problem = "answer is not JSON"
            if attempt + 1 < attempts:
                self.stats.retries += 1
                if len(self.urls) > 1:
                    self._active = (self._active + 1) % len(self.urls)
                    self.stats.failovers += 1
                self._sleep(min(self.max_backoff, self.backoff * 2**attempt))
        tried = ", ".join(redact_url(u) for u in self.urls)
        raise RpcUnavailable(f"{label}: RPC unavailable ({last_problem}) after {attempt + 1} attempts; tried {tried}")

    def _probe(self) -> bool:
        """One `eth_chainId` to each endpoint in turn (short timeout); True and that endpoint active on an answer."""
        timeout = min(self.timeout, self.breaker.schedule.timeout if self.breaker else self.timeout)
        request = {"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []}
        for offset in range(len(self.urls)):
            index = (self._active + offset) % len(self.urls)
            self.stats.probes += 1
            try:
                response = self._http.post(self.urls[index], json=request, timeout=timeout)
                reply = response.json() if response.status_code == 200 else None
                answered = isinstance(reply, dict) and "result" in reply
            except (httpx.HTTPError, ValueError):
                answered = False
            if answered:
                self._active = index
                return True
        return False


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")


def _result_of(reply: dict[str, Any], method: str) -> Any:
    error = reply.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise RpcError(0, str(error), None, method)
        raise RpcError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"), method)
    if "result" not in reply:
        raise RpcUnavailable(f"{method}: answer has neither result nor error")
    return reply["result"]
