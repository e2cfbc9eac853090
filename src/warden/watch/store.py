"""Alerts, webhooks and the delivery outbox in the inventory database (`warden.watch.tables`).

Every control-plane worker shares them: an alert is one row per workspace and alert id, a delivery one row
per alert and webhook, and a delivery is claimed by one conditional UPDATE before it is sent, so two
workers never post the same alert to the same webhook.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warden.errors import BadInput, NotFound
from warden.fleet.first_use import create_tables
from warden.fleet.store import Fleet, WorkspaceRef
from warden.hexutil import parse_bytes32
from warden.watch import tables as t
from warden.watch.alerts import Alert, AppChainState, AppRef

WebhookFormat = Literal["json", "slack"]
WEBHOOK_FORMATS: tuple[WebhookFormat, ...] = ("json", "slack")
SECRET_PREFIX = "whsec_"
MAX_URL = 2000


@dataclass(frozen=True)
class WebhookView:
    id: int
    url: str
    format: WebhookFormat
    secret: str
    created_at: int

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        shown = {"secret": self.secret} if with_secret else {}
        return {"id": self.id, "url": self.url, "format": self.format, "created_at": self.created_at} | shown


class DeliveryView(BaseModel):
    """An alert's delivery to one webhook, as the API and `warden alerts ls` show it."""

    model_config = ConfigDict(frozen=True)

    webhook: int  # its id
    url: str
    status: str = Field(description="pending | delivered | failed")
    attempts: int
    last_error: str | None
    last_status: int | None
    delivered_at: int | None


class AlertView(BaseModel):
    """An alert as the API, the dashboard and the webhooks show it (`warden.web.alerts_models.Alert`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    app: str
    app_name: str | None
    chain_id: int
    subject: str
    message: str
    fix: str | None
    details: dict[str, Any]
    raised_at: int
    resolved_at: int | None
    deliveries: tuple[DeliveryView, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class DueDelivery:
    """A delivery whose time has come, with what is needed to send it."""

    id: int
    attempts: int
    next_try_ms: int
    webhook: WebhookView
    alert: AlertView


@dataclass(frozen=True)
class AppStatus:
    """What the watcher last read of an app (the metrics' source)."""

    workspace_id: int
    app: str
    app_name: str | None
    chain_id: int
    head: int | None
    devices: int | None
    compose_hashes: int | None
    allow_any_device: bool | None
    drifted_nodes: int | None
    checked_at: int | None
    error: str | None

    @property
    def label(self) -> str:
        return self.app_name or self.app


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host; anything else is a BadInput naming what is expected."""
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(text) > MAX_URL:
        raise BadInput(f"invalid webhook URL {url!r}: expected http(s)://HOST[:PORT]/PATH")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise BadInput(f"invalid webhook URL {url!r}: it contains spaces or control characters")
    return text


def check_format(value: str) -> WebhookFormat:
    text = value.strip().lower()
    for known in WEBHOOK_FORMATS:
        if text == known:
            return known
    raise BadInput(f"invalid webhook format {value!r}: choose one of {', '.join(WEBHOOK_FORMATS)}")


def _webhook_view(row: t.Webhook) -> WebhookView:
    return WebhookView(row.id, row.url, check_format(row.format), row.secret, row.created_at)


def _alert_view(row: t.StoredAlert, deliveries: Sequence[DeliveryView] = ()) -> AlertView:
    return AlertView(
        id=row.alert_id,
        kind=row.kind,
        app=row.app,
        app_name=row.app_name,
        chain_id=row.chain_id,
        subject=row.subject,
        message=row.message,
        fix=row.fix,
        details=json.loads(row.details),
        raised_at=row.raised_at,
        resolved_at=row.resolved_at,
        deliveries=tuple(deliveries),
    )


class AlertStore:
    """The watcher's state over `fleet`'s database; `clock` gives unix seconds (float)."""

    def __init__(self, fleet: Fleet, *, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.clock = clock
        create_tables(fleet, *t.TABLES)

    def _now(self) -> int:
        return int(self.clock())

    # -- webhooks --------------------------------------------------------------------------------

    def add_webhook(self, workspace: WorkspaceRef, url: str, format: str = "json") -> WebhookView:
        """A new webhook for the workspace's alerts, with a fresh signing secret (shown to the caller once)."""
        checked, fmt = check_webhook_url(url), check_format(format)
        with self.fleet.session() as s:
            taken = s.scalars(
                select(t.Webhook.id).where(t.Webhook.workspace_id == workspace.id, t.Webhook.url == checked)
            ).first()
            if taken is not None:
                raise BadInput(f"webhook {checked} is already configured (id {taken}); remove it first to change it")
            row = t.Webhook(
                workspace_id=workspace.id,
                url=checked,
                format=fmt,
                secret=SECRET_PREFIX + secrets.token_urlsafe(32),
                created_at=self._now(),
            )
            s.add(row)
            s.flush()
            return _webhook_view(row)

    def webhooks(self, workspace: WorkspaceRef) -> list[WebhookView]:
        with self.fleet.session() as s:
            rows = s.scalars(select(t.Webhook).where(t.Webhook.workspace_id == workspace.id).order_by(t.Webhook.id))
            return [_webhook_view(r) for r in rows]

    def webhook(self, workspace: WorkspaceRef, webhook_id: int) -> WebhookView:
        with self.fleet.session() as s:
            row = s.get(t.Webhook, webhook_id)
            if row is None or row.workspace_id != workspace.id:
                raise NotFound(f"no webhook {webhook_id} in workspace {workspace.name} (`warden alerts ls` lists them)")
            return _webhook_view(row)

    def remove_webhook(self, workspace: WorkspaceRef, webhook_id: int) -> WebhookView:
        """Remove a webhook; its pending deliveries go with it."""
        removed = self.webhook(workspace, webhook_id)
        with self.fleet.session() as s:
            s.execute(delete(t.Delivery).where(t.Delivery.webhook_id == webhook_id))
            s.execute(delete(t.Webhook).where(t.Webhook.id == webhook_id, t.Webhook.workspace_id == workspace.id))
        return removed

    # -- transactions warden sent ----------------------------------------------------------------

    def record_sent_tx(
        self, chain_id: int, tx_hash: str, *, app: str | None = None, workspace: WorkspaceRef | None = None
    ) -> None:
        """Remember a transaction warden sent (call it when sending, before waiting for the receipt): the
        changes it makes are not "out of band". Recording the same one twice is harmless."""
        tx = "0x" + parse_bytes32(tx_hash, "transaction hash").hex()
        try:
            with self.fleet.session() as s:
                s.add(
                    t.SentTx(
                        chain_id=chain_id,
                        tx_hash=tx,
                        app=app,
                        sent_at=self._now(),
                        workspace_id=workspace.id if workspace else None,
                    )
                )
        except IntegrityError:
            pass

    def sent_txs(self, chain_id: int, txs: Iterable[str]) -> set[str]:
        """Which of these transactions (0x-hex) warden sent."""
        wanted = sorted({tx.lower() for tx in txs})
        found: set[str] = set()
        with self.fleet.session() as s:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(
                    s.scalars(
                        select(t.SentTx.tx_hash).where(t.SentTx.chain_id == chain_id, t.SentTx.tx_hash.in_(chunk))
                    )
                )
        return found

    # -- watched apps ----------------------------------------------------------------------------

    def baseline(self, workspace: WorkspaceRef, app: AppRef, head: int) -> int:
        """The block from which the app's events are news: the head when the watcher first read it."""
        with self.fleet.session() as s:
            row = self._watched(s, workspace, app)
            if row is not None and row.baseline_block is not None:
                return row.baseline_block
        self._ensure_row(workspace, app)
        with self.fleet.session() as s:  # conditional: when two workers race, the first baseline stands
            s.execute(
                update(t.WatchedApp)
                .where(
                    t.WatchedApp.workspace_id == workspace.id,
                    t.WatchedApp.chain_id == app.chain_id,
                    t.WatchedApp.app == app.address,
                    t.WatchedApp.baseline_block.is_(None),
                )
                .values(baseline_block=head)
            )
            row = self._watched(s, workspace, app)
            assert row is not None and row.baseline_block is not None
            return row.baseline_block

    def _ensure_row(self, workspace: WorkspaceRef, app: AppRef) -> None:
        with self.fleet.session() as s:
            if self._watched(s, workspace, app) is not None:
                return
        try:
            with self.fleet.session() as s:
                s.add(
                    t.WatchedApp(
                        workspace_id=workspace.id,
                        chain_id=app.chain_id,
                        app=app.address,
                        app_name=app.name,
                        baseline_block=None,
                    )
                )
        except IntegrityError:  # another worker added it at the same moment
            pass

    def save_status(
        self,
        workspace: WorkspaceRef,
        app: AppRef,
        state: AppChainState | None,
        drifted: int | None,
        error: str | None = None,
    ) -> None:
        """What the last pass read of the app (state None: the read failed with `error`; the old numbers stay)."""
        self._ensure_row(workspace, app)
        with self.fleet.session() as s:
            row = self._watched(s, workspace, app)
            assert row is not None
            row.app_name, row.checked_at, row.error = app.name, self._now(), error[:500] if error else None
            if state is not None:
                row.head, row.devices, row.compose_hashes = state.head, len(state.devices), len(state.compose_hashes)
                row.allow_any_device, row.drifted_nodes = state.allow_any_device, drifted

    def statuses(self, workspace: WorkspaceRef) -> list[AppStatus]:
        with self.fleet.session() as s:
            rows = s.scalars(
                select(t.WatchedApp).where(t.WatchedApp.workspace_id == workspace.id).order_by(t.WatchedApp.id)
            )
            return [
                AppStatus(
                    r.workspace_id,
                    r.app,
                    r.app_name,
                    r.chain_id,
                    r.head,
                    r.devices,
                    r.compose_hashes,
                    r.allow_any_device,
                    r.drifted_nodes,
                    r.checked_at,
                    r.error,
                )
                for r in rows
            ]

    def _watched(self, s: Session, workspace: WorkspaceRef, app: AppRef) -> t.WatchedApp | None:
        row: t.WatchedApp | None = s.scalars(
            select(t.WatchedApp).where(
                t.WatchedApp.workspace_id == workspace.id,
                t.WatchedApp.chain_id == app.chain_id,
                t.WatchedApp.app == app.address,
            )
        ).one_or_none()
        return row

    # -- alerts ----------------------------------------------------------------------------------

    def raise_alerts(self, workspace: WorkspaceRef, alerts: Sequence[Alert]) -> list[str]:
        """Record the alerts seen now; the ids of those that are news (new, or back after being resolved), each
        queued once for every webhook of the workspace. An open alert seen again only has `last_seen` moved."""
        now = self._now()
        news: list[str] = []
        for alert in alerts:
            with self.fleet.session() as s:
                row = s.scalars(
                    select(t.StoredAlert).where(
                        t.StoredAlert.workspace_id == workspace.id, t.StoredAlert.alert_id == alert.id
                    )
                ).one_or_none()
                if row is not None:
                    if row.resolved_at is None:
                        row.last_seen = now
                        continue
                    # resolved, and back (a drift fixed, then the device removed again): tell it again, once
                    back = s.execute(
                        update(t.StoredAlert)
                        .where(t.StoredAlert.id == row.id, t.StoredAlert.occurrence == row.occurrence)
                        .values(resolved_at=None, last_seen=now, occurrence=row.occurrence + 1)
                    )
                    if getattr(back, "rowcount", 0) == 1:
                        self._queue(s, workspace, row.id, row.occurrence + 1, now)
                        news.append(alert.id)
                    continue
            try:
                with self.fleet.session() as s:
                    row = t.StoredAlert(
                        workspace_id=workspace.id, alert_id=alert.id, kind=alert.kind, app=alert.app.address,
                        app_name=alert.app.name, chain_id=alert.app.chain_id, subject=alert.subject,
                        message=alert.message, fix=alert.fix, details=json.dumps(alert.details, sort_keys=True),
                        ongoing=alert.ongoing, raised_at=now, last_seen=now, resolved_at=None, occurrence=1,
                    )  # fmt: skip
                    s.add(row)
                    s.flush()
                    self._queue(s, workspace, row.id, 1, now)
            except IntegrityError:  # another worker raised it at the same moment: it queued the deliveries
                continue
            news.append(alert.id)
        return news

    def _queue(self, s: Session, workspace: WorkspaceRef, alert_pk: int, occurrence: int, now: int) -> None:
        """One pending delivery of this occurrence of the alert to each webhook of the workspace."""
        for hook in s.scalars(select(t.Webhook.id).where(t.Webhook.workspace_id == workspace.id)).all():
            s.add(t.Delivery(alert_pk=alert_pk, webhook_id=hook, occurrence=occurrence, status="pending", attempts=0,
                             next_try_ms=now * 1000, created_at=now))  # fmt: skip

    def resolve_gone(self, workspace: WorkspaceRef, app: AppRef, present: Iterable[str]) -> list[str]:
        """Ongoing alerts of the app that are no longer seen (the drift was fixed): marked resolved; their ids."""
        still = set(present)
        now = self._now()
        with self.fleet.session() as s:
            rows = s.scalars(
                select(t.StoredAlert).where(
                    t.StoredAlert.workspace_id == workspace.id,
                    t.StoredAlert.app == app.address,
                    t.StoredAlert.chain_id == app.chain_id,
                    t.StoredAlert.ongoing.is_(True),
                    t.StoredAlert.resolved_at.is_(None),
                )
            ).all()
            gone = [r for r in rows if r.alert_id not in still]
            for row in gone:
                row.resolved_at = now
            return [r.alert_id for r in gone]

    def alerts(self, workspace: WorkspaceRef, *, limit: int = 100, open_only: bool = False) -> list[AlertView]:
        """The workspace's alerts, newest first, each with how its deliveries went."""
        with self.fleet.session() as s:
            query = select(t.StoredAlert).where(t.StoredAlert.workspace_id == workspace.id)
            if open_only:
                query = query.where(t.StoredAlert.resolved_at.is_(None))
            rows = s.scalars(query.order_by(t.StoredAlert.id.desc()).limit(limit)).all()
            by_alert: dict[int, list[DeliveryView]] = {}
            if rows:
                found = s.execute(
                    select(t.Delivery, t.Webhook.url)
                    .join(t.Webhook, t.Webhook.id == t.Delivery.webhook_id)
                    .where(t.Delivery.alert_pk.in_([r.id for r in rows]))
                    .order_by(t.Delivery.id)
                ).all()
                for d, url in found:
                    by_alert.setdefault(d.alert_pk, []).append(
                        DeliveryView(
                            webhook=d.webhook_id,
                            url=url,
                            status=d.status,
                            attempts=d.attempts,
                            last_error=d.last_error,
                            last_status=d.last_status,
                            delivered_at=d.delivered_at,
                        )
                    )
            return [_alert_view(r, by_alert.get(r.id, ())) for r in rows]

    def delivery_counts(self, workspace: WorkspaceRef) -> dict[tuple[str, str], int]:
        """Deliveries of the workspace's alerts by (status, reason): reason is the last error's kind or "ok"."""
        with self.fleet.session() as s:
            rows = s.execute(
                select(t.Delivery.status, t.Delivery.last_error, func.count())
                .join(t.Webhook, t.Webhook.id == t.Delivery.webhook_id)
                .where(t.Webhook.workspace_id == workspace.id)
                .group_by(t.Delivery.status, t.Delivery.last_error)
            ).all()
        counts: dict[tuple[str, str], int] = {}
        for status, error, count in rows:
            key = (status, _reason(error) if status != "delivered" else "ok")
            counts[key] = counts.get(key, 0) + count
        return counts

    # -- the outbox ------------------------------------------------------------------------------

    def due(self, now_ms: int, limit: int = 50) -> list[DueDelivery]:
        """Pending deliveries whose next try is due (every workspace), oldest first."""
        with self.fleet.session() as s:
            found = s.execute(
                select(t.Delivery, t.Webhook, t.StoredAlert)
                .join(t.Webhook, t.Webhook.id == t.Delivery.webhook_id)
                .join(t.StoredAlert, t.StoredAlert.id == t.Delivery.alert_pk)
                .where(t.Delivery.status == "pending", t.Delivery.next_try_ms <= now_ms)
                .order_by(t.Delivery.next_try_ms, t.Delivery.id)
                .limit(limit)
            ).all()
            return [DueDelivery(d.id, d.attempts, d.next_try_ms, _webhook_view(w), _alert_view(a)) for d, w, a in found]

    def claim(self, delivery: DueDelivery, lease_until_ms: int) -> bool:
        """Take the delivery for one attempt (its next try moves to the lease's end, so a worker that dies
        mid-send leaves it to be retried); False when another worker took it first."""
        with self.fleet.session() as s:
            taken = s.execute(
                update(t.Delivery)
                .where(
                    t.Delivery.id == delivery.id,
                    t.Delivery.status == "pending",
                    t.Delivery.next_try_ms == delivery.next_try_ms,
                )
                .values(next_try_ms=lease_until_ms)
            )
            return getattr(taken, "rowcount", 0) == 1

    def delivered(self, delivery_id: int, status: int) -> None:
        with self.fleet.session() as s:
            s.execute(
                update(t.Delivery)
                .where(t.Delivery.id == delivery_id)
                .values(
                    status="delivered",
                    attempts=t.Delivery.attempts + 1,
                    last_status=status,
                    last_error=None,
                    delivered_at=self._now(),
                )
            )

    def attempt_failed(self, delivery_id: int, error: str, status: int | None, next_try_ms: int | None) -> None:
        """A failed attempt: retried at `next_try_ms`, or (None) given up on, kept as failed with its error."""
        values: dict[str, Any] = {"attempts": t.Delivery.attempts + 1, "last_error": error[:500], "last_status": status}
        values |= {"next_try_ms": next_try_ms} if next_try_ms is not None else {"status": "failed"}
        with self.fleet.session() as s:
            s.execute(update(t.Delivery).where(t.Delivery.id == delivery_id).values(**values))

    def retry_failed(self, workspace: WorkspaceRef) -> int:
        """Queue the workspace's failed deliveries again (after fixing the receiver); how many."""
        now_ms = self._now() * 1000
        with self.fleet.session() as s:
            hooks = select(t.Webhook.id).where(t.Webhook.workspace_id == workspace.id)
            done = s.execute(
                update(t.Delivery)
                .where(t.Delivery.status == "failed", t.Delivery.webhook_id.in_(hooks))
                .values(status="pending", attempts=0, next_try_ms=now_ms)
            )
            return int(getattr(done, "rowcount", 0))


def _reason(error: str | None) -> str:
    """A delivery error's kind, for a metric label: `timeout`, `http-500`, `connection` … (`none` for None)."""
    if not error:
        return "none"
    return error.split(":", 1)[0].strip() or "error"
