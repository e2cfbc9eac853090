"""The watcher's tables, in the inventory database next to the fleet's (created on first use, like the probe
nonces): webhooks per workspace, alerts, the delivery outbox, the transactions warden sent, and what the
watcher last saw of each app. Times are unix seconds except `next_try_ms` (retries can be sub-second)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warden.fleet.first_use import FirstUseBase


class Webhook(FirstUseBase):
    __tablename__ = "watch_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer, index=True)
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(10))  # json | slack
    secret: Mapped[str] = mapped_column(String(100))  # the HMAC key the receiver verifies signatures with
    created_at: Mapped[int] = mapped_column(Integer)


class StoredAlert(FirstUseBase):
    __tablename__ = "watch_alerts"
    __table_args__ = (UniqueConstraint("workspace_id", "alert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer, index=True)
    alert_id: Mapped[str] = mapped_column(String(64))  # warden.watch.alerts.alert_id: the same problem, the same id
    kind: Mapped[str] = mapped_column(String(40))
    app: Mapped[str] = mapped_column(String(42))
    app_name: Mapped[str | None] = mapped_column(String(100))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    fix: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # JSON object
    ongoing: Mapped[bool] = mapped_column(Boolean)
    raised_at: Mapped[int] = mapped_column(Integer)
    last_seen: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[int | None] = mapped_column(Integer)
    occurrence: Mapped[int] = mapped_column(Integer, default=1)  # 2: it was resolved, then came back


class Delivery(FirstUseBase):
    """One occurrence of an alert to one webhook: created once (the unique triple is what "never duplicated"
    rests on)."""

    __tablename__ = "watch_deliveries"
    __table_args__ = (UniqueConstraint("alert_pk", "webhook_id", "occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_pk: Mapped[int] = mapped_column(ForeignKey("watch_alerts.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("watch_webhooks.id", ondelete="CASCADE"), index=True)
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_try_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's last HTTP status
    delivered_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)


class SentTx(FirstUseBase):
    """A transaction the control plane sent: a change in it was made through warden."""

    __tablename__ = "watch_sent_txs"
    __table_args__ = (UniqueConstraint("chain_id", "tx_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))  # 0x-lowercase
    app: Mapped[str | None] = mapped_column(String(42), index=True)
    workspace_id: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[int] = mapped_column(Integer)


class WatchedApp(FirstUseBase):
    """What the watcher last read of an app: from which block its events are news, and its summary."""

    __tablename__ = "watch_apps"
    __table_args__ = (UniqueConstraint("workspace_id", "chain_id", "app"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer, index=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    app: Mapped[str] = mapped_column(String(42))
    app_name: Mapped[str | None] = mapped_column(String(100))
    # events up to here were history when watching began (None: the app could never be read yet)
    baseline_block: Mapped[int | None] = mapped_column(BigInteger)
    head: Mapped[int | None] = mapped_column(BigInteger)
    devices: Mapped[int | None] = mapped_column(Integer)
    compose_hashes: Mapped[int | None] = mapped_column(Integer)
    allow_any_device: Mapped[bool | None] = mapped_column(Boolean)
    drifted_nodes: Mapped[int | None] = mapped_column(Integer)
    checked_at: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))  # why the last read failed (None: it worked)


TABLES = (Webhook, StoredAlert, Delivery, SentTx, WatchedApp)  # what `AlertStore` creates on first use
