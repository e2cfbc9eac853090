"""The control plane's HTTP API under /api: nodes, identity history, apps, CVMs, the merged allowlist.

Every request carries `Authorization: Bearer <workspace token>`; a missing or wrong token is 401, and a
node, app or CVM the workspace cannot see is 404 (the same answer as for one that does not exist). Every
other failure answers `{"detail": …}` with the error's own status (`warden.errors`: 400, 409, 503 …).
Each answer is a model of `warden.web.models`, so /api/openapi.json documents it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from warden.chain.inputs import parse_bytes32, parse_hex
from warden.errors import Conflict, WardenError
from warden.fleet import store
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


@router.get("/nodes")
def list_nodes(workspace: Workspace, plane: Plane) -> NodeList:
    """Nodes this workspace may deploy to, with their current PPID and device id."""
    return NodeList.model_validate({"nodes": [n.as_json() for n in plane.fleet.nodes(workspace)]})


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


@router.get("/apps")
def list_apps(workspace: Workspace, plane: Plane) -> AppList:
    return AppList.model_validate({"apps": [a.as_json() for a in plane.fleet.apps(workspace)]})


@router.post("/apps", status_code=201, responses=answers(400))
def add_app(body: NewApp, workspace: Workspace, plane: Plane) -> App:
    """Register an app with the workspace (idempotent; name and KMS are updated)."""
    app = plane.fleet.register_app(workspace, body.app, chain_id=body.chain_id, kms_contract=body.kms, name=body.name)
    return App.model_validate(app.as_json())


@router.get("/apps/{app}", responses=answers(404))
def get_app(app: str, workspace: Workspace, plane: Plane) -> App:
    """An app by address (0x…, app_…), name, or one of its CVMs."""
    return App.model_validate(plane.fleet.app(workspace, app).as_json())


@router.get("/apps/{app}/device-allowlist", responses=answers(404, 503))
async def get_device_allowlist(app: str, workspace: Workspace, plane: Plane) -> DeviceAllowlist:
    """On-chain allowlist + where the app's CVMs run + deployable nodes, one row per device id."""
    view = await run_in_threadpool(plane.device_allowlist, workspace, app)
    return DeviceAllowlist.model_validate(view.as_json())


@router.get("/apps/{app}/history", responses=answers(404, 503))
async def get_app_history(app: str, workspace: Workspace, plane: Plane) -> AppHistory:
    """The app's device audit trail from the chain (DeviceAdded, DeviceRemoved, AllowAnyDeviceSet)."""
    address = plane.fleet.app(workspace, app).address
    events = await run_in_threadpool(plane.app_history, workspace, app)
    return AppHistory.model_validate({"app": address, "events": events})


@router.get("/cvms", responses=answers(404))
def list_cvms(workspace: Workspace, plane: Plane, app: str | None = None) -> CvmList:
    """The workspace's CVMs, or only those of `app` (address, name, or one of its CVMs)."""
    return CvmList.model_validate({"cvms": [c.as_json() for c in plane.fleet.cvms(workspace, app)]})


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
