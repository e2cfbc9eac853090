"""A client of the control plane's HTTP API (`/api/…`), for the CLI and scripts.

Errors read like the rest of warden: an unreachable server or a refused token is an OperationFailed
(exit 1), an unknown node, app or CVM is a BadInput carrying the server's own words (exit 2). The token
goes into the Authorization header only; no message, repr or log line ever contains it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from warden.errors import BadInput, OperationFailed

DEFAULT_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0


def _segment(value: str) -> str:
    """One path segment: a name, UUID or address with every reserved character escaped."""
    return quote(value.strip(), safe="")


def _detail(response: httpx.Response) -> str:
    """The server's `{"detail": …}` as one line (FastAPI's validation errors are a list of objects)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        if parts:
            return "; ".join(parts)
    return f"HTTP {response.status_code}"


def normalise_url(url: str) -> str:
    """The control plane's base URL: scheme and host required; a trailing `/` or `/api` is dropped."""
    text = url.strip().rstrip("/")
    if text.endswith("/api"):
        text = text[: -len("/api")]
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise BadInput(f"invalid control plane URL {url!r} (WARDEN_API_URL): expected http(s)://HOST[:PORT]")
    return text


def check_token(token: str) -> str:
    """A token that can travel in a header; the message never repeats it."""
    text = token.strip()
    if not text or any(c.isspace() or not c.isprintable() or not c.isascii() for c in text):
        raise BadInput("invalid API token (WARDEN_API_TOKEN): expected one word of printable ASCII characters")
    return text


class ControlPlaneClient:
    """`GET /api/nodes` and friends; every method returns the server's JSON object."""

    def __init__(self, url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self.url = normalise_url(url)
        headers = {"Authorization": f"Bearer {check_token(token)}", "Accept": "application/json"}
        try:
            self._http = httpx.Client(
                base_url=self.url + "/api",
                headers=headers,
                timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
                transport=transport,
            )
        except httpx.InvalidURL:
            raise BadInput(f"invalid control plane URL {url!r} (WARDEN_API_URL)") from None

    def __repr__(self) -> str:
        return f"ControlPlaneClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TimeoutException:
            raise OperationFailed(
                f"the control plane at {self.url} (WARDEN_API_URL) did not answer {method} /api{path} in time"
            ) from None
        except httpx.InvalidURL:
            raise BadInput(f"invalid control plane URL {self.url!r} (WARDEN_API_URL)") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise OperationFailed(f"cannot reach the control plane at {self.url} (WARDEN_API_URL): {reason}") from None
        status = response.status_code
        if status == 401:
            raise OperationFailed("the control plane refused the API token (WARDEN_API_TOKEN)")
        if status == 403:
            raise OperationFailed(f"the control plane forbids {method} /api{path} for this API token")
        if status in (400, 404, 409, 422):
            raise BadInput(_detail(response))
        if status >= 300:
            raise OperationFailed(f"the control plane failed {method} /api{path}: {_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise OperationFailed(
                f"the control plane at {self.url} answered {method} /api{path} with something that is not JSON "
                "(is WARDEN_API_URL the control plane's address?)"
            ) from None

    def _object(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        body = self._request(method, path, **options)
        if not isinstance(body, dict):
            raise OperationFailed(f"the control plane answered {method} /api{path} with a non-object")
        return body

    def _list(self, path: str, key: str, **options: Any) -> list[dict[str, Any]]:
        items = self._object("GET", path, **options).get(key)
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise OperationFailed(f"the control plane answered GET /api{path} without a list of {key}")
        return items

    # -- workspace and nodes ---------------------------------------------------------------------

    def workspace(self) -> str:
        """The workspace the token belongs to."""
        return str(self._object("GET", "/workspace").get("workspace"))

    def nodes(self) -> list[dict[str, Any]]:
        """Nodes this workspace may deploy to: name, device_id, ppid, region, status, …"""
        return self._list("/nodes", "nodes")

    def node(self, name: str) -> dict[str, Any]:
        """One node with its device-identity `history` (oldest first)."""
        return self._object("GET", f"/nodes/{_segment(name)}")

    def node_history(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/nodes/{_segment(name)}/history", "history")

    def add_node(self, name: str, *, region: str | None = None, tee_version: str | None = None) -> dict[str, Any]:
        return self._object("POST", "/nodes", json={"name": name, "region": region, "tee_version": tee_version})

    def post_attestation(self, name: str, quote_hex: str) -> dict[str, Any]:
        """A node's TDX quote (hex); the answer says whether its device id changed and which CVMs it strands."""
        return self._object("POST", f"/nodes/{_segment(name)}/attestation", json={"quote": quote_hex})

    # -- apps ------------------------------------------------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        return self._list("/apps", "apps")

    def app(self, key: str) -> dict[str, Any]:
        """An app by address (0x…, app_…) or name: app, name, chain_id, kms."""
        return self._object("GET", f"/apps/{_segment(key)}")

    def add_app(self, app: str, *, chain_id: int, kms: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Register an app with the workspace (idempotent)."""
        return self._object("POST", "/apps", json={"app": app, "chain_id": chain_id, "kms": kms, "name": name})

    def device_allowlist(self, app: str) -> dict[str, Any]:
        """The merged allowlist: on-chain devices, where the app's CVMs run, deployable nodes."""
        return self._object("GET", f"/apps/{_segment(app)}/device-allowlist")

    def app_history(self, app: str) -> list[dict[str, Any]]:
        return self._list(f"/apps/{_segment(app)}/history", "events")

    # -- CVMs ------------------------------------------------------------------------------------

    def cvms(self, app: str | None = None) -> list[dict[str, Any]]:
        return self._list("/cvms", "cvms", params={"app": app} if app else None)

    def cvm(self, key: str) -> dict[str, Any]:
        """A CVM by name, UUID or instance id."""
        return self._object("GET", f"/cvms/{_segment(key)}")

    def add_cvm(
        self,
        name: str,
        *,
        app: str,
        node: str,
        compose_hash: str | None = None,
        instance_id: str | None = None,
        status: str = "created",
        uuid: str | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "app": app, "node": node, "compose_hash": compose_hash, "instance_id": instance_id,
                "status": status, "uuid": uuid}  # fmt: skip
        return self._object("POST", "/cvms", json=body)

    def set_cvm_status(self, key: str, status: str, *, reason: str | None = None,
                       device_allowed: bool | None = None) -> dict[str, Any]:  # fmt: skip
        body = {"status": status, "reason": reason, "device_allowed": device_allowed}
        return self._object("POST", f"/cvms/{_segment(key)}/status", json=body)

    def move_cvm(self, key: str, node: str) -> dict[str, Any]:
        return self._object("POST", f"/cvms/{_segment(key)}/move", json={"node": node})
