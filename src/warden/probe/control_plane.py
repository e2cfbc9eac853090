"""The probe's two calls to the control plane (`POST /api/probe/nonce`, `POST /api/probe/report`).

Errors read like the rest of warden: unreachable or a refused token is an OperationFailed (exit 1), a
refused report (replayed or expired nonce, another node's quote …) a Denied with the server's reason
(exit 1), a malformed request or an unknown node a BadInput with the server's words (exit 2). The token
travels in the Authorization header only and is never part of a message.
"""

from __future__ import annotations

from typing import Any

import httpx

from warden.errors import BadInput, Denied, OperationFailed
from warden.hexutil import parse_hex
from warden.httpdetail import answer_detail
from warden.identity.probe_binding import NONCE_BYTES


class ProbeApi:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        base = url.strip().rstrip("/").removesuffix("/api")
        if not base.startswith(("http://", "https://")) or not base.split("://", 1)[1]:
            raise BadInput(f"invalid control plane URL {url!r} (WARDEN_API_URL): expected http(s)://HOST[:PORT]")
        secret = token.strip()
        if not secret or any(c.isspace() or not c.isprintable() or not c.isascii() for c in secret):
            raise BadInput("invalid API token (WARDEN_API_TOKEN): expected one word of printable ASCII characters")
        self.url = base
        self._http = httpx.Client(base_url=base + "/api/probe", headers={"Authorization": f"Bearer {secret}"},
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def take_nonce(self, node: str) -> bytes:
        """A fresh nonce for `node`."""
        answer = self._post("/nonce", {"node": node})
        nonce = answer.get("nonce")
        if not isinstance(nonce, str):
            raise OperationFailed(f"the control plane at {self.url} answered a nonce request without a nonce")
        return parse_hex(nonce, "nonce from the control plane", NONCE_BYTES)

    def report(self, node: str, nonce: bytes, quote: str, event_log: str) -> dict[str, Any]:
        """Post the quote and event log; the node's recorded identity."""
        return self._post("/report", {"node": node, "nonce": nonce.hex(), "quote": quote, "event_log": event_log})

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        where = f"POST /api/probe{path}"
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise OperationFailed(
                f"cannot reach the control plane at {self.url} (WARDEN_API_URL) for {where}: "
                f"{exc or type(exc).__name__}"
            ) from None
        status, detail = response.status_code, answer_detail(response)
        if status == 401:
            raise OperationFailed("the control plane refused the API token (WARDEN_API_TOKEN)")
        if status == 403:
            raise Denied(f"the control plane refused the probe report: {detail}")
        if status in (400, 404, 409, 422):
            raise BadInput(detail)
        if status >= 300:
            raise OperationFailed(f"the control plane failed {where}: {detail}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise OperationFailed(
                f"the control plane at {self.url} answered {where} with something that is not a JSON object "
                "(is WARDEN_API_URL a warden control plane?)"
            )
        return answer
