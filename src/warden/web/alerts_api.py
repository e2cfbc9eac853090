"""/api/alerts: the workspace's alert webhooks, its alerts with how their deliveries went, a test send, and
the record of transactions warden sent (so their changes are not reported as made outside warden).

Same token and error answers as the rest of /api (`warden.web.api`). The alert store and the deliverer
are made on first use over the control plane's database (`app.state.alert_store`, `app.state.deliverer`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from warden.chain.inputs import parse_address
from warden.watch.delivery import Deliverer
from warden.watch.store import AlertStore
from warden.web.alerts_models import (
    AlertList,
    CreatedWebhook,
    NewWebhook,
    Recorded,
    Retried,
    SentTx,
    TestRequest,
    TestResults,
    Webhook,
    WebhookList,
)
from warden.web.api import WardenRoute, Workspace, answers, plane_of


def alert_store(request: Request) -> AlertStore:
    """The app's alert store, made on first use over the control plane's database."""
    state = request.app.state
    store: AlertStore | None = getattr(state, "alert_store", None)
    if store is None:
        store = state.alert_store = plane_of(request).alert_store()
    return store


def deliverer(request: Request, store: Annotated[AlertStore, Depends(alert_store)]) -> Deliverer:
    state = request.app.state
    found: Deliverer | None = getattr(state, "deliverer", None)
    if found is None:
        found = state.deliverer = Deliverer(store)
    return found


Store = Annotated[AlertStore, Depends(alert_store)]
Sender = Annotated[Deliverer, Depends(deliverer)]

router = APIRouter(prefix="/api/alerts", tags=["alerts"], route_class=WardenRoute, responses=answers(401))


@router.get("")
def list_alerts(
    workspace: Workspace,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first")] = 100,
    open_only: Annotated[bool, Query(alias="open", description="Only alerts not resolved")] = False,
) -> AlertList:
    """The workspace's alerts, newest first, with each delivery's status, attempts and last error."""
    alerts = store.alerts(workspace, limit=limit, open_only=open_only)
    return AlertList.model_validate({"alerts": [a.as_json() for a in alerts]})


@router.get("/webhooks")
def list_webhooks(workspace: Workspace, store: Store) -> WebhookList:
    return WebhookList.model_validate({"webhooks": [w.as_json() for w in store.webhooks(workspace)]})


@router.post("/webhooks", status_code=201, responses=answers(400))
def add_webhook(body: NewWebhook, workspace: Workspace, store: Store) -> CreatedWebhook:
    """Send the workspace's new alerts to this URL, signed with the secret in the answer (shown only now)."""
    return CreatedWebhook.model_validate(store.add_webhook(workspace, body.url, body.format).as_json(with_secret=True))


@router.delete("/webhooks/{webhook_id}", responses=answers(404))
def remove_webhook(webhook_id: int, workspace: Workspace, store: Store) -> Webhook:
    """Stop sending to this webhook (its pending deliveries are dropped with it)."""
    return Webhook.model_validate(store.remove_webhook(workspace, webhook_id).as_json())


@router.post("/test", responses=answers(404))
async def send_test(body: TestRequest, workspace: Workspace, sender: Sender) -> TestResults:
    """A test alert to every webhook of the workspace (or one), now; how each answered."""
    results = await run_in_threadpool(sender.send_test, workspace, body.webhook)
    return TestResults.model_validate({"results": results})


@router.post("/retry")
def retry_failed(workspace: Workspace, store: Store) -> Retried:
    """Queue the deliveries that were given up on again (after the receiver is fixed)."""
    return Retried(queued=store.retry_failed(workspace))


@router.post("/sent-txs", responses=answers(400))
def record_sent_tx(body: SentTx, workspace: Workspace, store: Store) -> Recorded:
    """A transaction warden sent for this workspace: its allowlist changes are not alerted as out-of-band."""
    app = parse_address(body.app, "app address") if body.app else None
    store.record_sent_tx(body.chain_id, body.tx, app=app, workspace=workspace)
    return Recorded(recorded=True)
