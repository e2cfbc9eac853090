"""A client of the control plane's HTTP API (`/api/…`), for the CLI and scripts.

Errors read like the rest of warden: an unreachable server or a refused token is an OperationFailed
(exit 1), an unknown node, app or CVM is a BadInput carrying the server's own words (exit 2). Every
answer is checked against the model the server declares for it (`warden.web.models`): one that does not
fit is an OperationFailed naming the fields, never a KeyError later. Methods return the answer as JSON
objects (dicts). The token goes into the Authorization header only; no message, repr or log line ever
contains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from warden.errors import BadInput, OperationFailed
from warden.httpdetail import answer_detail
from warden.web import models

DEFAULT_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0
SHOWN_PROBLEMS = 3  # a malformed answer names this many of its bad fields
PAGE_SIZE = 1_000  # the server's largest page: every item in as few round trips as it allows
MAX_PAGES = 100_000  # a server that never stops handing out cursors is a failure, not an endless loop

AnswerT = TypeVar("AnswerT", bound=BaseModel)


def _segment(value: str) -> str:
    """One path segment: a name, UUID or address with every reserved character escaped."""
    return quote(value.strip(), safe="")


def _problems(exc: ValidationError) -> str:
    """Where an answer does not fit its model, as one line (the values themselves are not repeated)."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in errors[:SHOWN_PROBLEMS]]
    more = len(errors) - SHOWN_PROBLEMS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _json(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """Checked answers as the JSON objects the server sent (hex 0x-lowercase, addresses EIP-55)."""
    return [item.model_dump(mode="json") for item in items]


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
    """`GET /api/nodes` and friends; every method returns the server's checked JSON object (or list)."""

    def __init__(self, url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None, page_size: int = PAGE_SIZE) -> None:  # fmt: skip
        self.url = normalise_url(url)
        self.page_size = page_size  # items per request when a list method fetches every page
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
            raise BadInput(answer_detail(response))
        if status >= 300:
            raise OperationFailed(f"the control plane failed {method} /api{path}: {answer_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise OperationFailed(
                f"the control plane at {self.url} answered {method} /api{path} with something that is not JSON "
                "(is WARDEN_API_URL the control plane's address?)"
            ) from None

    def _answer(self, model: type[AnswerT], method: str, path: str, **options: Any) -> AnswerT:
        """The answer, checked against the model the server declares for it (warden.web.models)."""
        body = self._request(method, path, **options)
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise OperationFailed(
                f"the control plane at {self.url} answered {method} /api{path} with something warden cannot read "
                f"as a {model.__name__} ({_problems(exc)}); is WARDEN_API_URL a warden control plane of this version?"
            ) from None

    def _list(self, model: type[AnswerT], path: str, field: str, limit: int | None,
              params: dict[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """A list answer's items: one page of `limit`, or (None) every page, following `next_cursor`."""
        return [item for page in self._pages(model, path, limit, params) for item in _json(getattr(page, field))]

    def _pages(self, model: type[AnswerT], path: str, limit: int | None,
               params: dict[str, str] | None = None) -> list[AnswerT]:  # fmt: skip
        """A list's answers: one page of `limit`, or (None) every page, following `next_cursor`."""
        if limit is not None and limit < 1:
            raise BadInput(f"invalid limit {limit}: expected at least 1 item per page")
        query = dict(params or {}) | {"limit": str(limit or self.page_size)}
        pages: list[AnswerT] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = self._answer(model, "GET", path, params=query)
            pages.append(page)
            cursor = getattr(page, "next_cursor", None)
            if limit is not None or cursor is None:
                return pages
            if cursor in seen:
                break
            seen.add(cursor)
            query["cursor"] = cursor
        raise OperationFailed(f"the control plane at {self.url} kept answering GET /api{path} with the same page")

    # -- workspace and nodes ---------------------------------------------------------------------

    def workspace(self) -> str:
        """The workspace the token belongs to."""
        return self._answer(models.WorkspaceAnswer, "GET", "/workspace").workspace

    def nodes(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Nodes this workspace may deploy to (name, device_id, ppid, region, status, …), by name: all of them,
        or the first `limit`."""
        return self._list(models.NodeList, "/nodes", "nodes", limit)

    def node(self, name: str) -> dict[str, Any]:
        """One node with its device-identity `history` (oldest first)."""
        return self._answer(models.NodeDetail, "GET", f"/nodes/{_segment(name)}").model_dump(mode="json")

    def node_history(self, name: str) -> list[dict[str, Any]]:
        return _json(self._answer(models.NodeHistory, "GET", f"/nodes/{_segment(name)}/history").history)

    def add_node(self, name: str, *, region: str | None = None, tee_version: str | None = None) -> dict[str, Any]:
        body = {"name": name, "region": region, "tee_version": tee_version}
        return self._answer(models.Node, "POST", "/nodes", json=body).model_dump(mode="json")

    def post_attestation(self, name: str, quote_hex: str) -> dict[str, Any]:
        """A node's TDX quote (hex); the answer says whether its device id changed and which CVMs it strands."""
        path = f"/nodes/{_segment(name)}/attestation"
        return self._answer(models.IdentityUpdate, "POST", path, json={"quote": quote_hex}).model_dump(mode="json")

    # -- apps ------------------------------------------------------------------------------------

    def apps(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The workspace's apps in the order they were registered: all of them, or the first `limit`."""
        return self._list(models.AppList, "/apps", "apps", limit)

    def app(self, key: str) -> dict[str, Any]:
        """An app by address (0x…, app_…) or name: app, name, chain_id, kms."""
        return self._answer(models.App, "GET", f"/apps/{_segment(key)}").model_dump(mode="json")

    def add_app(self, app: str, *, chain_id: int, kms: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Register an app with the workspace (idempotent)."""
        body = {"app": app, "chain_id": chain_id, "kms": kms, "name": name}
        return self._answer(models.App, "POST", "/apps", json=body).model_dump(mode="json")

    def device_allowlist(self, app: str, *, limit: int | None = None) -> dict[str, Any]:
        """The merged allowlist: on-chain devices, where the app's CVMs run, deployable nodes; every row (from
        every page, the head fields of the first), or the first `limit` rows."""
        pages = self._pages(models.DeviceAllowlist, f"/apps/{_segment(app)}/device-allowlist", limit)
        merged = pages[0].model_dump(mode="json")
        merged["devices"] = [row for page in pages for row in _json(page.devices)]
        merged["next_cursor"] = pages[-1].next_cursor
        return merged

    def app_history(self, app: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The app's device audit trail, oldest first: every event, or the first `limit`."""
        return self._list(models.AppHistory, f"/apps/{_segment(app)}/history", "events", limit)

    # -- CVMs ------------------------------------------------------------------------------------

    def cvms(self, app: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The workspace's CVMs (or `app`'s) by name: all of them, or the first `limit`."""
        return self._list(models.CvmList, "/cvms", "cvms", limit, {"app": app} if app else None)

    def cvm(self, key: str) -> dict[str, Any]:
        """A CVM by name, UUID or instance id."""
        return self._answer(models.Cvm, "GET", f"/cvms/{_segment(key)}").model_dump(mode="json")

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
        return self._answer(models.Cvm, "POST", "/cvms", json=body).model_dump(mode="json")

    def set_cvm_status(self, key: str, status: str, *, reason: str | None = None,
                       device_allowed: bool | None = None) -> dict[str, Any]:  # fmt: skip
        body = {"status": status, "reason": reason, "device_allowed": device_allowed}
        return self._answer(models.Cvm, "POST", f"/cvms/{_segment(key)}/status", json=body).model_dump(mode="json")

    def move_cvm(self, key: str, node: str) -> dict[str, Any]:
        return self._answer(models.Cvm, "POST", f"/cvms/{_segment(key)}/move", json={"node": node}).model_dump(
            mode="json"
        )
