"""The control plane's HTTP API under /api: nodes, identity history, apps, CVMs, the merged allowlist.

Every request carries `Authorization: Bearer <workspace token>`; a missing or wrong token is 401, and a
node, app or CVM the workspace cannot see is 404 (the same answer as for one that does not exist).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from warden.chain.inputs import parse_bytes32, parse_hex
from warden.fleet.store import CVM_STATUSES, NotFound, WorkspaceRef
from warden.web.plane import ControlPlane


def plane_of(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.plane
    return plane


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_workspace(request: Request) -> WorkspaceRef:
    token = bearer_token(request)
    workspace = plane_of(request).fleet.workspace_for_token(token) if token else None
    if workspace is None:
        raise HTTPException(
            401,
            "missing or wrong API token: send `Authorization: Bearer <token>` (WARDEN_API_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return workspace


Workspace = Annotated[WorkspaceRef, Depends(api_workspace)]
Plane = Annotated[ControlPlane, Depends(plane_of)]

router = APIRouter(prefix="/api", tags=["control plane"])


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
def get_workspace(workspace: Workspace) -> dict[str, Any]:
    return {"workspace": workspace.name}


@router.get("/nodes")
def list_nodes(workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """Nodes this workspace may deploy to, with their current PPID and device id."""
    return {"nodes": [n.as_json() for n in plane.fleet.nodes(workspace)]}


@router.post("/nodes", status_code=201)
def add_node(body: NewNode, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """Register a node and let this workspace deploy to it (a node of another workspace is refused)."""
    try:
        plane.fleet.node(workspace, body.name)
    except NotFound:
        if plane.fleet.node_exists(body.name):
            raise HTTPException(409, f"node {body.name!r} exists and belongs to another workspace") from None
    node = plane.fleet.add_node(body.name, region=body.region, tee_version=body.tee_version)
    plane.fleet.grant(workspace, node.name)
    return node.as_json()


@router.get("/nodes/{name}")
def get_node(name: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    node = plane.fleet.node(workspace, name)
    history = plane.fleet.node_history(workspace, name)
    return node.as_json() | {"history": [h.as_json() for h in history]}


@router.get("/nodes/{name}/history")
def get_node_history(name: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """Every device identity the node presented (old id → new id, first and last seen)."""
    return {"node": name, "history": [h.as_json() for h in plane.fleet.node_history(workspace, name)]}


@router.post("/nodes/{name}/attestation")
async def post_attestation(name: str, body: NodeQuote, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """A node's quote: verified, its device id recorded; a changed id flags the CVMs it strands."""
    update = await run_in_threadpool(plane.record_quote, workspace, name, body.quote)
    return update.as_json()


@router.get("/apps")
def list_apps(workspace: Workspace, plane: Plane) -> dict[str, Any]:
    return {"apps": [a.as_json() for a in plane.fleet.apps(workspace)]}


@router.post("/apps", status_code=201)
def add_app(body: NewApp, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    app = plane.fleet.register_app(workspace, body.app, chain_id=body.chain_id, kms_contract=body.kms, name=body.name)
    return app.as_json()


@router.get("/apps/{app}")
def get_app(app: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    return plane.fleet.app(workspace, app).as_json()


@router.get("/apps/{app}/device-allowlist")
async def get_device_allowlist(app: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """On-chain allowlist + where the app's CVMs run + deployable nodes, one row per device id."""
    view = await run_in_threadpool(plane.device_allowlist, workspace, app)
    return view.as_json()


@router.get("/apps/{app}/history")
async def get_app_history(app: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """The app's device audit trail from the chain (DeviceAdded, DeviceRemoved, AllowAnyDeviceSet)."""
    address = plane.fleet.app(workspace, app).address
    events = await run_in_threadpool(plane.app_history, workspace, app)
    return {"app": address, "events": events}


@router.get("/cvms")
def list_cvms(workspace: Workspace, plane: Plane, app: str | None = None) -> dict[str, Any]:
    return {"cvms": [c.as_json() for c in plane.fleet.cvms(workspace, app)]}


@router.post("/cvms", status_code=201)
def add_cvm(body: NewCvm, workspace: Workspace, plane: Plane) -> dict[str, Any]:
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
    return cvm.as_json()


@router.get("/cvms/{key}")
def get_cvm(key: str, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    """A CVM by name, UUID or instance id."""
    return plane.fleet.find_cvm(workspace, key).as_json()


@router.post("/cvms/{key}/status")
def set_cvm_status(key: str, body: CvmStatus, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    cvm = plane.fleet.set_cvm_status(workspace, key, body.status, body.reason, device_allowed=body.device_allowed)
    return cvm.as_json()


@router.post("/cvms/{key}/move")
def move_cvm(key: str, body: CvmMove, workspace: Workspace, plane: Plane) -> dict[str, Any]:
    return plane.fleet.move_cvm(workspace, key, body.node).as_json()
