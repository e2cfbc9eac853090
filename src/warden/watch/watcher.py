"""One pass of the watcher: for every workspace and registered app, read the contract's state (new blocks
only, through the scan cache), compare it with where the app's CVMs run and the nodes' current device ids,
record the alerts (new ones are queued for every webhook of the workspace), resolve the ones that are gone,
then send what is due. The control plane runs a pass every few seconds (`warden.watch.loop`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from warden.chain.abi import DecodedLog
from warden.chain.app import AppAuth
from warden.chain.history import block_times
from warden.chain.logcache import ScanCache
from warden.errors import WardenError
from warden.fleet.store import AppView, CvmView, Fleet, NotFound, WorkspaceRef
from warden.watch.alerts import AppRef, Placement, app_alerts, drifted_nodes
from warden.watch.chain_state import read_app_state
from warden.watch.delivery import Deliverer, DeliveryReport
from warden.watch.store import AlertStore

logger = logging.getLogger(__name__)


class Chains(Protocol):
    """How the watcher reaches an app's contract and the scan cache (the control plane provides both)."""

    def app_auth(self, app: AppView) -> AppAuth: ...

    def log_cache(self) -> ScanCache | None: ...


@dataclass
class PassReport:
    apps: int = 0
    raised: list[str] = field(default_factory=list)  # ids of new alerts
    resolved: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # apps that could not be read, and why
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


def placements_of(app: AppView, cvms: list[CvmView]) -> list[Placement]:
    return [Placement(c.name, c.node, c.node_device_id, c.compose_hash, c.status) for c in cvms if c.app == app.address]


# warden records a transaction it sent once its receipt is in: a change younger than this is not judged
# "out of band" yet, so the watcher never races the sender's own bookkeeping
OUT_OF_BAND_GRACE_SECONDS = 60


@dataclass
class Watcher:
    fleet: Fleet
    chains: Chains
    store: AlertStore
    deliverer: Deliverer
    out_of_band_grace_seconds: float = field(default=OUT_OF_BAND_GRACE_SECONDS, kw_only=True)

    def run_once(self) -> PassReport:
        """Check every app of every workspace, then deliver what is due."""
        report = self.detect()
        report.delivery = self.deliverer.deliver_due()
        return report

    def detect(self) -> PassReport:
        """Check every app of every workspace and record the alerts; one app's failure stops nothing else."""
        report = PassReport()
        for info in self.fleet.workspaces():
            if not info.apps:
                continue
            try:
                workspace = self.fleet.workspace(info.name)
            except NotFound:  # removed meanwhile
                continue
            self.check_workspace(workspace, report)
        return report

    def check_workspace(self, workspace: WorkspaceRef, report: PassReport) -> None:
        cvms = self.fleet.cvms(workspace)
        for app in self.fleet.apps(workspace):
            report.apps += 1
            self.check_app(workspace, app, cvms, report)

    def check_app(self, workspace: WorkspaceRef, app: AppView, cvms: list[CvmView], report: PassReport) -> None:
        ref = AppRef(app.address, app.chain_id, app.name)
        try:
            state = read_app_state(self.chains.app_auth(app), self.chains.log_cache())
        except WardenError as exc:
            why = f"app {ref.label} ({app.address}) on chain {app.chain_id}: {exc}"
            logger.warning("watch: cannot read %s", why)
            report.errors.append(why)
            self.store.save_status(workspace, ref, None, None, str(exc))
            return
        baseline = self.store.baseline(workspace, ref, state.head)
        placements = placements_of(app, cvms)
        news = [e for e in state.events if e.block_number > baseline]
        sent = self.store.sent_txs(app.chain_id, [e.tx_hash for e in news]) if news else set()
        unjudged = self._too_recent(app, [e for e in news if e.tx_hash.lower() not in sent])
        alerts = app_alerts(ref, state, placements, baseline_block=baseline, sent_by_warden=sent | unjudged)
        report.raised += self.store.raise_alerts(workspace, alerts)
        report.resolved += self.store.resolve_gone(workspace, ref, [a.id for a in alerts if a.ongoing])
        self.store.save_status(workspace, ref, state, drifted_nodes(state, placements))

    def _too_recent(self, app: AppView, events: list[DecodedLog]) -> set[str]:
        """Transactions of these events mined less than the grace ago (judged on a later pass)."""
        grace = self.out_of_band_grace_seconds
        if not events or grace <= 0:
            return set()
        chain = self.chains.app_auth(app).chain
        times = block_times(chain, [(e.block_number, e.block_hash) for e in events], self.chains.log_cache())
        now = self.store.clock()
        # a block whose time could not be read counts as recent: better a late alert than a false one
        return {e.tx_hash.lower() for e in events if now - times.get(e.block_number, now) < grace}
