"""An app's on-chain state for the watcher: its contract's events (incrementally, through the scan cache)
folded into the allowed devices and compose hashes, with owner and allowAnyDevice read at the same head."""

from __future__ import annotations

from warden.chain.app import AppAuth
from warden.chain.history import read_history, remember_limits
from warden.chain.logcache import ScanCache
from warden.watch.alerts import WATCHED_EVENTS, AppChainState, fold_events


def read_app_state(app: AppAuth, cache: ScanCache | None = None) -> AppChainState:
    """The app's allowlists from its own events up to the head; owner and allowAnyDevice asked at that head
    (the events say the same, but the getters also hold for contracts that never emitted them)."""
    history = read_history(app, WATCHED_EVENTS, cache=cache)
    devices, hashes, _allow_any, _owner = fold_events(history.events)
    owner, allow_any = app.call_many([("owner", ()), ("allowAnyDevice", ())], block=history.head)
    remember_limits(app.chain, cache)
    for answer in (owner, allow_any):
        if isinstance(answer, Exception):
            raise answer
    return AppChainState(history.head, devices, hashes, bool(allow_any), str(owner), tuple(history.events))
