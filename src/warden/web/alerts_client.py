"""`warden alerts …` over HTTP: the /api/alerts calls, on top of `ControlPlaneClient`'s transport (the same
errors, the same token handling, every answer checked against `warden.web.alerts_models`)."""

from __future__ import annotations

from typing import Any

from warden.web import alerts_models as models
from warden.web.client import ControlPlaneClient


class AlertsClient:
    def __init__(self, client: ControlPlaneClient) -> None:
        self.client = client

    def add_webhook(self, url: str, format: str = "json") -> dict[str, Any]:
        """A new webhook; the answer holds its signing `secret` (shown only now)."""
        body = {"url": url, "format": format}
        answer = self.client._answer(models.CreatedWebhook, "POST", "/alerts/webhooks", json=body)
        return answer.model_dump(mode="json")

    def webhooks(self) -> list[dict[str, Any]]:
        answer = self.client._answer(models.WebhookList, "GET", "/alerts/webhooks")
        return [w.model_dump(mode="json") for w in answer.webhooks]

    def remove_webhook(self, webhook_id: int) -> dict[str, Any]:
        answer = self.client._answer(models.Webhook, "DELETE", f"/alerts/webhooks/{webhook_id}")
        return answer.model_dump(mode="json")

    def test(self, webhook_id: int | None = None) -> list[dict[str, Any]]:
        answer = self.client._answer(models.TestResults, "POST", "/alerts/test", json={"webhook": webhook_id})
        return [r.model_dump(mode="json") for r in answer.results]

    def alerts(self, *, limit: int = 100, open_only: bool = False) -> list[dict[str, Any]]:
        params = {"limit": str(limit), "open": str(open_only).lower()}
        answer = self.client._answer(models.AlertList, "GET", "/alerts", params=params)
        return [a.model_dump(mode="json") for a in answer.alerts]

    def retry(self) -> int:
        return self.client._answer(models.Retried, "POST", "/alerts/retry").queued

    def record_sent_tx(self, chain_id: int, tx: str, app: str | None = None) -> None:
        body = {"chain_id": chain_id, "tx": tx, "app": app}
        self.client._answer(models.Recorded, "POST", "/alerts/sent-txs", json=body)
