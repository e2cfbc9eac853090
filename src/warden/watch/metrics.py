"""The control plane's Prometheus metrics for one workspace, built per scrape (a fresh CollectorRegistry
from what the watcher stored, the inventory and the decision tally), in the text format.

Series: warden_app_drifted_nodes, warden_app_allowed_devices, warden_app_allowed_compose_hashes,
warden_app_allow_any_device, warden_app_chain_head_lag_blocks, warden_app_seconds_since_check (label app),
warden_node_seconds_since_attestation (node), warden_alerts_open (kind), warden_webhook_deliveries (status,
reason), warden_kms_decisions_total (service, allowed, reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from warden.errors import WardenError
from warden.fleet.store import Fleet, WorkspaceRef
from warden.kms.decision_tally import DecisionKey, register_decisions
from warden.watch.store import AlertStore

CONTENT_TYPE = CONTENT_TYPE_LATEST
ChainHead = Callable[[int], int]  # chain id → its current block number (raises WardenError when unreachable)


def workspace_registry(
    workspace: WorkspaceRef,
    fleet: Fleet,
    store: AlertStore,
    *,
    chain_head: ChainHead | None = None,
    decisions: Mapping[DecisionKey, int] | None = None,
) -> CollectorRegistry:
    """Every series for this workspace, as of now."""
    registry = CollectorRegistry(auto_describe=True)
    now = store.clock()
    _app_series(registry, workspace, store, now, chain_head)
    nodes = Gauge(
        "warden_node_seconds_since_attestation",
        "Seconds since the node last proved its identity.",
        ["node"],
        registry=registry,
    )
    for node in fleet.nodes(workspace):
        if node.last_attested_at is not None:
            nodes.labels(node.name).set(max(0.0, now - node.last_attested_at))
    open_alerts = Gauge(
        "warden_alerts_open", "Alerts not resolved (event alerts stay open).", ["kind"], registry=registry
    )
    for alert in store.alerts(workspace, limit=10_000, open_only=True):
        open_alerts.labels(alert.kind).inc()
    deliveries = Gauge(
        "warden_webhook_deliveries",
        "Alert deliveries to webhooks by status and last reason.",
        ["status", "reason"],
        registry=registry,
    )
    for (status, reason), count in sorted(store.delivery_counts(workspace).items()):
        deliveries.labels(status, reason).set(count)
    register_decisions(registry, decisions or {})
    return registry


def _app_series(
    registry: CollectorRegistry, workspace: WorkspaceRef, store: AlertStore, now: float, chain_head: ChainHead | None
) -> None:
    def gauge(name: str, help: str) -> Gauge:
        return Gauge(name, help, ["app"], registry=registry)

    drifted = gauge("warden_app_drifted_nodes", "Nodes running the app's CVMs on a device id it does not allow.")
    devices = gauge("warden_app_allowed_devices", "Device ids the app's contract allows.")
    hashes = gauge("warden_app_allowed_compose_hashes", "Compose hashes the app's contract allows.")
    allow_any = gauge("warden_app_allow_any_device", "1 when the app lets any device boot.")
    lag = gauge("warden_app_chain_head_lag_blocks", "Blocks between the chain's head and the last one watched.")
    since = gauge("warden_app_seconds_since_check", "Seconds since the watcher last read the app's contract.")
    heads: dict[int, int | None] = {}
    for status in store.statuses(workspace):
        app = status.label
        if status.checked_at is not None:
            since.labels(app).set(max(0.0, now - status.checked_at))
        if status.head is None:
            continue  # never read: no numbers to show yet
        drifted.labels(app).set(status.drifted_nodes or 0)
        devices.labels(app).set(status.devices or 0)
        hashes.labels(app).set(status.compose_hashes or 0)
        allow_any.labels(app).set(1 if status.allow_any_device else 0)
        if chain_head is not None:
            if status.chain_id not in heads:
                heads[status.chain_id] = _head(chain_head, status.chain_id)
            head = heads[status.chain_id]
            if head is not None:
                lag.labels(app).set(max(0, head - status.head))


def _head(chain_head: ChainHead, chain_id: int) -> int | None:
    try:
        return chain_head(chain_id)
    except WardenError:
        return None  # an unreachable chain leaves out its lag; the rest is still served


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)
