"""Delivering alerts: POST each due delivery of the outbox to its webhook, signed, with retries and backoff.

An attempt succeeds on any 2xx. A timeout, a refused connection or another status is a failed attempt: the
delivery stays in the outbox and is tried again after an exponentially growing pause; after `max_attempts`
it is kept as `failed` with its last error (listed, and queued again by `retry_failed`), never dropped.
Each delivery is claimed before it is sent, so an alert reaches a webhook at most once per success.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from warden.fleet.store import WorkspaceRef
from warden.watch.payloads import alert_payload, encode, signed_headers
from warden.watch.store import AlertStore, AlertView, DueDelivery, WebhookView

DEFAULT_TIMEOUT = 5.0
PARALLEL_SENDS = 8


@dataclass(frozen=True)
class Backoff:
    """Pause before retry n (1-based): first * factor^(n-1), at most `max_seconds`; give up after `max_attempts`."""

    first_seconds: float = 2.0
    factor: float = 2.0
    max_seconds: float = 900.0
    max_attempts: int = 12  # about two hours of trying with the defaults

    def delay_ms(self, attempts_made: int) -> int:
        return int(min(self.max_seconds, self.first_seconds * self.factor ** max(attempts_made - 1, 0)) * 1000)


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None  # the receiver's HTTP status (None: no answer)
    error: str | None  # "<kind>: <what happened>", kind ∈ timeout, connection, http-<status>, invalid-url

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "error": self.error}


@dataclass
class DeliveryReport:
    delivered: list[tuple[str, int]] = field(default_factory=list)  # (alert id, webhook id)
    retrying: list[tuple[str, int, str]] = field(default_factory=list)  # … and the error
    failed: list[tuple[str, int, str]] = field(default_factory=list)  # gave up (kept as failed)


class Deliverer:
    """Posts alerts to webhooks with one HTTP client (its connections are reused between passes)."""

    def __init__(
        self,
        store: AlertStore,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: Backoff | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def post(self, webhook: WebhookView, alert: AlertView) -> Attempt:
        """One signed POST of the alert to the webhook."""
        body = encode(alert_payload(alert, webhook.format))
        headers = signed_headers(webhook.secret, int(self.store.clock()), body, alert.id)
        try:
            response = self._http.post(webhook.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Attempt(False, None, f"timeout: {webhook.url} did not answer within {self.timeout:g} s")
        except httpx.InvalidURL:
            return Attempt(False, None, f"invalid-url: {webhook.url} cannot be posted to")
        except httpx.HTTPError as exc:
            return Attempt(False, None, f"connection: cannot reach {webhook.url}: {str(exc) or type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return Attempt(True, response.status_code, None)
        return Attempt(
            False,
            response.status_code,
            f"http-{response.status_code}: {webhook.url} answered HTTP {response.status_code}",
        )

    def deliver_due(self, limit: int = 50) -> DeliveryReport:
        """Send every delivery whose time has come (each claimed first, so no other worker sends it too), several
        at once: a receiver that hangs until the timeout does not hold up the others."""
        report = DeliveryReport()
        now_ms = int(self.store.clock() * 1000)
        lease_ms = int((self.timeout * 2 + 30) * 1000)
        claimed = [due for due in self.store.due(now_ms, limit) if self.store.claim(due, now_ms + lease_ms)]
        if not claimed:
            return report
        with ThreadPoolExecutor(
            max_workers=min(PARALLEL_SENDS, len(claimed)), thread_name_prefix="warden-alert"
        ) as pool:
            attempts = list(pool.map(self._attempt, claimed))
        for due, (attempt, gave_up) in zip(claimed, attempts, strict=True):
            key = (due.alert.id, due.webhook.id)
            if attempt.ok:
                report.delivered.append(key)
            elif gave_up:
                report.failed.append((*key, attempt.error or "error"))
            else:
                report.retrying.append((*key, attempt.error or "error"))
        return report

    def _attempt(self, due: DueDelivery) -> tuple[Attempt, bool]:
        """One try of a claimed delivery, recorded; whether it was the last one allowed."""
        attempt = self.post(due.webhook, due.alert)
        if attempt.ok:
            assert attempt.status is not None
            self.store.delivered(due.id, attempt.status)
            return attempt, False
        error = attempt.error or "error"
        if due.attempts + 1 >= self.backoff.max_attempts:
            self.store.attempt_failed(due.id, error, attempt.status, None)
            return attempt, True
        next_try = int(self.store.clock() * 1000) + self.backoff.delay_ms(due.attempts + 1)
        self.store.attempt_failed(due.id, error, attempt.status, next_try)
        return attempt, False

    def send_test(self, workspace: WorkspaceRef, webhook_id: int | None = None) -> list[dict[str, Any]]:
        """A test alert to each of the workspace's webhooks (or one), now, once; how each answered."""
        hooks = (
            [self.store.webhook(workspace, webhook_id)] if webhook_id is not None else self.store.webhooks(workspace)
        )
        results = []
        for hook in hooks:
            alert = test_alert(workspace, int(self.store.clock()))
            results.append(
                {"webhook": hook.id, "url": hook.url, "format": hook.format} | self.post(hook, alert).as_json()
            )
        return results


def test_alert(workspace: WorkspaceRef, now: int) -> AlertView:
    """A harmless alert that says what it is (`warden alerts test`)."""
    return AlertView(
        id="test-" + secrets.token_hex(8),
        kind="test",
        app="",
        app_name=None,
        chain_id=0,
        subject=workspace.name,
        message=f"test alert from warden for workspace {workspace.name}: this webhook receives warden's alerts",
        fix=None,
        details={},
        raised_at=now,
        resolved_at=None,
    )
