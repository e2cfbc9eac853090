"""What /api/alerts answers, as pydantic models (declared by the server, checked by `AlertsClient`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from warden.watch.store import AlertView
from warden.web.models import Answer


class NewWebhook(BaseModel):
    url: str = Field(description="http(s) URL the alerts are POSTed to")
    format: str = Field("json", description="json (warden's alert object) | slack (an incoming-webhook message)")


class Webhook(Answer):
    id: int
    url: str
    format: str
    created_at: int


class CreatedWebhook(Webhook):
    secret: str = Field(description="HMAC-SHA256 key of X-Warden-Signature; shown only now")


class WebhookList(Answer):
    webhooks: list[Webhook]


class TestRequest(BaseModel):
    webhook: int | None = Field(None, description="Only this webhook (default: every webhook of the workspace)")


class TestResult(Answer):
    webhook: int
    url: str
    format: str
    ok: bool
    status: int | None = Field(description="The receiver's HTTP status (null: no answer)")
    error: str | None


class TestResults(Answer):
    results: list[TestResult]


class Alert(AlertView, Answer):
    """`warden.watch.store.AlertView`, as /api/alerts answers it."""


class AlertList(Answer):
    alerts: list[Alert]


class SentTx(BaseModel):
    chain_id: int
    tx: str = Field(description="The transaction hash warden sent (its changes are not out-of-band)")
    app: str | None = None


class Recorded(Answer):
    recorded: bool


class Retried(Answer):
    queued: int
