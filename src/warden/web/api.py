"""The control plane's HTTP API under /api: nodes, identity history, apps, CVMs, the merged allowlist.

Every request carries `Authorization: Bearer <workspace token>`; a missing or wrong token is 401, and a
node, app or CVM the workspace cannot see is 404 (the same answer as for one that does not exist). Every
other failure answers `{"detail": …}` with the error's own status (`warden.errors`: 400, 409, 503 …).
Each answer is a model of `warden.web.models`, so /api/openapi.json documents it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from warden.chain.inputs import parse_bytes32, parse_hex
from warden.errors import BadInput, Conflict, WardenError
from warden.fleet import store
from warden.fleet.allowlist_view import decode_row_key, encode_row_key, row_key
from warden.fleet.store import CVM_STATUSES, WorkspaceRef
from warden.web.models import (
    App,
    AppHistory,
    AppList,
    Cvm,
    CvmList,
    DeviceAllowlist,
    ErrorDetail,
    IdentityUpdate,
    Node,
    NodeDetail,
    NodeHistory,
    NodeList,
    WorkspaceAnswer,
)
from warden.web.plane import ControlPlane

UNAUTHORIZED = "missing or wrong API token: send `Authorization: Bearer <token>` (WARDEN_API_TOKEN)"

api_token = HTTPBearer(
    auto_error=False,  # a missing token is answered below, with the same 401 as a wrong one
    scheme_name="WorkspaceToken",
    bearerFormat="wdn_…",
    description="A workspace's API token (`warden workspace token`, WARDEN_API_TOKEN)",
)


def plane_of(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


def api_workspace(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_token)]
) -> WorkspaceRef:
    token = credentials.credentials if credentials else None
    workspace = plane_of(request).fleet.workspace_for_token(token) if token else None
    if workspace is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    return workspace


class WardenRoute(APIRoute):
    """An /api route that answers a WardenError as `{"detail": …}` with the error's HTTP status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except WardenError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

        return answer


ANSWERS: dict[int, str] = {
    400: "A malformed request (a bad hex value, a quote that does not verify …)",
    401: "A missing or wrong API token",
    404: "No such node, app or CVM, or one this workspace cannot see",
    409: "The name is taken by another workspace's node",
    503: "The chain (or another backend) could not be read",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error answers a route can give (all are `{"detail": …}`)."""
    return {status: {"model": ErrorDetail, "description": ANSWERS[status]} for status in statuses}


Workspace = Annotated[WorkspaceRef, Depends(api_workspace)]
Plane = Annotated[ControlPlane, Depends(plane_of)]

router = APIRouter(prefix="/api", tags=["control plane"], route_class=WardenRoute, responses=answers(401))

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000


def encode_cursor(key: str | int) -> str:
    """An opaque cursor: the last item's sort key (name or row id), base64url without padding."""
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor of `encode_cursor` carries; anything else is a BadInput (400)."""
    text = cursor.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError):
        key = ""
    if not text or not key or encode_cursor(key) != text:  # only the exact text this server wrote
        raise BadInput(f"invalid cursor {cursor!r}: pass the `next_cursor` of the previous page as it is")
    return key


@dataclass(frozen=True)
class Page:
    """One page of a list: at most `limit` items after the key `after` (None: from the first)."""

    limit: int
    after: str | None

    def split(self, fetched: list[Any], key: Callable[[Any], str | int]) -> tuple[list[Any], str | None]:
        """The page's items and the next page's cursor, from `limit + 1` rows fetched (one more says "more")."""
        items = fetched[: self.limit]
        more = len(fetched) > self.limit
        return items, encode_cursor(key(items[-1])) if more else None


def page_of(
    limit: Annotated[int, Query(description=f"Items per page, 1 to {MAX_LIMIT:,}")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page; omit for the first")] = None,
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"invalid limit {limit}: expected 1 to {MAX_LIMIT:,} items per page")
    return Page(limit, decode_cursor(cursor) if cursor is not None else None)


Paging = Annotated[Page, Depends(page_of)]


class NewNode(BaseModel):
    name: str
    region: str | None = None
    tee_version: str | None = None


class NodeQuote(BaseModel):
    quote: str = Field(description="The node's TDX quote, hex (0x optional)")


class NewApp(BaseModel):
    app: str = Field(description="DstackApp address (0x…, app_…)")
    chain_id: int
    kms: str | None = None
    name: str | None = None


class NewCvm(BaseModel):
    name: str
    app: str
    node: str
    instance_id: str | None = None
    compose_hash: str | None = None
    status: str = "created"
    uuid: str | None = None


class CvmStatus(BaseModel):
    status: str = Field(description=" | ".join(CVM_STATUSES))
    reason: str | None = None
    device_allowed: bool | None = None


class CvmMove(BaseModel):
    node: str


@router.get("/workspace")
def get_workspace(workspace: Workspace) -> WorkspaceAnswer:
    return WorkspaceAnswer(workspace=workspace.name)


@router.get("/nodes", responses=answers(400))
def list_nodes(workspace: Workspace, plane: Plane, page: Paging) -> NodeList:
    """Nodes this workspace may deploy to, with their current PPID and device id; one page, by name."""
    fetched = plane.fleet.nodes(workspace, after=page.after, limit=page.limit + 1)
    nodes, next_cursor = page.split(fetched, lambda n: n.name)
    return NodeList.model_validate({"nodes": [n.as_json() for n in nodes], "next_cursor": next_cursor})


@router.post("/nodes", status_code=201, responses=answers(400, 409))
def add_node(body: NewNode, workspace: Workspace, plane: Plane) -> Node:
    """Register a node and let this workspace deploy to it (a node of another workspace is refused)."""
    try:
        plane.fleet.node(workspace, body.name)
    except store.NotFound:
        if plane.fleet.node_exists(body.name):
            raise Conflict(f"node {body.name!r} exists and belongs to another workspace") from None
    node = plane.fleet.add_node(body.name, region=body.region, tee_version=body.tee_version)
    plane.fleet.grant(workspace, node.name)
    return Node.model_validate(node.as_json())


@router.get("/nodes/{name}", responses=answers(404))
def get_node(name: str, workspace: Workspace, plane: Plane) -> NodeDetail:
    """A node with every device identity it presented (oldest first)."""
    node = plane.fleet.node(workspace, name)
    history = plane.fleet.node_history(workspace, name)
    return NodeDetail.model_validate(node.as_json() | {"history": [h.as_json() for h in history]})


@router.get("/nodes/{name}/history", responses=answers(404))
def get_node_history(name: str, workspace: Workspace, plane: Plane) -> NodeHistory:
    """Every device identity the node presented (old id → new id, first and last seen)."""
    history = plane.fleet.node_history(workspace, name)
    return NodeHistory.model_validate({"node": name, "history": [h.as_json() for h in history]})


@router.post("/nodes/{name}/attestation", responses=answers(400, 404, 503))
async def post_attestation(name: str, body: NodeQuote, workspace: Workspace, plane: Plane) -> IdentityUpdate:
    """A node's quote: verified, its device id recorded; a changed id flags the CVMs it strands."""
    update = await run_in_threadpool(plane.record_quote, workspace, name, body.quote)
    return IdentityUpdate.model_validate(update.as_json())


@router.get("/apps", responses=answers(400))
def list_apps(workspace: Workspace, plane: Plane, page: Paging) -> AppList:
    """The workspace's apps in the order they were registered; one page."""
    after = _position(page.after, "apps") if page.after is not None else None
    fetched = plane.fleet.app_page(workspace, after=after, limit=page.limit + 1)
    rows, next_cursor = page.split(fetched, lambda row: row[0])
    return AppList.model_validate({"apps": [app.as_json() for _, app in rows], "next_cursor": next_cursor})


def _position(key: str, what: str) -> int:
    """A cursor's number (a row id, a position in a list); anything else is a BadInput."""
    if not key.isascii() or not key.isdigit():
        raise BadInput(f"invalid cursor: pass the `next_cursor` of the previous page of /api/{what} as it is")
    return int(key)


@router.post("/apps", status_code=201, responses=answers(400))
def add_app(body: NewApp, workspace: Workspace, plane: Plane) -> App:
    """Register an app with the workspace (idempotent; name and KMS are updated)."""
    app = plane.fleet.register_app(workspace, body.app, chain_id=body.chain_id, kms_contract=body.kms, name=body.name)
    return App.model_validate(app.as_json())


@router.get("/apps/{app}", responses=answers(404))
def get_app(app: str, workspace: Workspace, plane: Plane) -> App:
    """An app by address (0x…, app_…), name, or one of its CVMs."""
    return App.model_validate(plane.fleet.app(workspace, app).as_json())


@router.get("/apps/{app}/device-allowlist", responses=answers(400, 404, 503))
async def get_device_allowlist(app: str, workspace: Workspace, plane: Plane, page: Paging) -> DeviceAllowlist:
    """On-chain allowlist + where the app's CVMs run + deployable nodes, one row per device id, what needs
    attention first; one page. `block` is the block the chain's part reflects; `warning` is about every row."""
    after = decode_row_key(page.after) if page.after is not None else None
    view = await run_in_threadpool(plane.device_allowlist, workspace, app)
    rows, more = view.page(after, page.limit)
    next_cursor = encode_cursor(encode_row_key(row_key(rows[-1]))) if more else None
    return DeviceAllowlist.model_validate(view.as_json(rows) | {"next_cursor": next_cursor})


@router.get("/apps/{app}/history", responses=answers(400, 404, 503))
async def get_app_history(app: str, workspace: Workspace, plane: Plane, page: Paging) -> AppHistory:
    """The app's device audit trail from the chain (DeviceAdded, DeviceRemoved, AllowAnyDeviceSet), oldest
    first; one page."""
    start = _position(page.after, "history") + 1 if page.after is not None else 0
    address = plane.fleet.app(workspace, app).address
    events = await run_in_threadpool(plane.app_history, workspace, app)
    shown = events[start : start + page.limit]
    more = start + page.limit < len(events)
    next_cursor = encode_cursor(start + len(shown) - 1) if more else None
    return AppHistory.model_validate({"app": address, "events": shown, "next_cursor": next_cursor})


@router.get("/cvms", responses=answers(400, 404))
def list_cvms(workspace: Workspace, plane: Plane, page: Paging, app: str | None = None) -> CvmList:
    """The workspace's CVMs, or only those of `app` (address, name, or one of its CVMs); one page, by name."""
    fetched = plane.fleet.cvms(workspace, app, after=page.after, limit=page.limit + 1)
    cvms, next_cursor = page.split(fetched, lambda c: c.name)
    return CvmList.model_validate({"cvms": [c.as_json() for c in cvms], "next_cursor": next_cursor})


@router.post("/cvms", status_code=201, responses=answers(400, 404))
def add_cvm(body: NewCvm, workspace: Workspace, plane: Plane) -> Cvm:
    """Place a CVM of a registered app on a node this workspace may deploy to."""
    cvm = plane.fleet.add_cvm(
        workspace,
        body.name,
        app=body.app,
        node=body.node,
        instance_id=parse_hex(body.instance_id, "instance id") if body.instance_id else None,
        compose_hash=parse_bytes32(body.compose_hash, "compose hash") if body.compose_hash else None,
        status=body.status,
        uuid=body.uuid,
    )
    return Cvm.model_validate(cvm.as_json())


@router.get("/cvms/{key}", responses=answers(404))
def get_cvm(key: str, workspace: Workspace, plane: Plane) -> Cvm:
    """A CVM by name, UUID or instance id."""
    return Cvm.model_validate(plane.fleet.find_cvm(workspace, key).as_json())


@router.post("/cvms/{key}/status", responses=answers(400, 404))
def set_cvm_status(key: str, body: CvmStatus, workspace: Workspace, plane: Plane) -> Cvm:
    cvm = plane.fleet.set_cvm_status(workspace, key, body.status, body.reason, device_allowed=body.device_allowed)
    return Cvm.model_validate(cvm.as_json())


@router.post("/cvms/{key}/move", responses=answers(404))
def move_cvm(key: str, body: CvmMove, workspace: Workspace, plane: Plane) -> Cvm:
    return Cvm.model_validate(plane.fleet.move_cvm(workspace, key, body.node).as_json())
