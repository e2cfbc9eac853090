"""The dashboard's Alerts page (`/alerts`): the workspace's alerts with how each delivery went, and its
webhooks (their secrets are never shown). Same session and headers as every dashboard page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from warden.web.alerts_api import Store
from warden.web.dashboard import Session, page_context, render_page

PAGE_SIZE = 200

router = APIRouter(include_in_schema=False)


@router.get("/alerts")
def alerts_page(request: Request, session: Session, store: Store) -> Response:
    workspace = session.workspace_ref
    context = page_context(request, session, "alerts", alerts=store.alerts(workspace, limit=PAGE_SIZE),
                           webhooks=store.webhooks(workspace))  # fmt: skip
    return render_page(request, "alerts.html", context)
