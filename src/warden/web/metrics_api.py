"""GET /metrics: the workspace's Prometheus metrics in the text format (`warden.watch.metrics`).

A scrape carries the workspace token like every API call (Prometheus: `authorization: {credentials: …}`),
so one workspace's app names and node names are never shown to another.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from warden.fleet.store import WorkspaceRef
from warden.kms.decision_tally import DECISIONS
from warden.watch.metrics import CONTENT_TYPE, render, workspace_registry
from warden.watch.store import AlertStore
from warden.web.alerts_api import Store
from warden.web.api import Plane, WardenRoute, Workspace, answers
from warden.web.plane import ControlPlane

router = APIRouter(tags=["metrics"], route_class=WardenRoute, responses=answers(401))


def scrape(workspace: WorkspaceRef, plane: ControlPlane, store: AlertStore) -> bytes:
    def chain_head(chain_id: int) -> int:
        return plane.chain(chain_id).block_number()

    registry = workspace_registry(workspace, plane.fleet, store, chain_head=chain_head, decisions=DECISIONS.snapshot())
    return render(registry)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(workspace: Workspace, plane: Plane, store: Store) -> Response:
    """Drifted nodes, allowed devices and compose hashes per app, seconds since each node's last attestation,
    chain head lag, open alerts, webhook deliveries and KMS decisions by reason."""
    body = await run_in_threadpool(scrape, workspace, plane, store)
    return Response(body, media_type=CONTENT_TYPE)
