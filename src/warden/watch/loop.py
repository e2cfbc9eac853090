"""The watcher in the background: one daemon thread runs a detection pass every `every_seconds`, another sends
due deliveries more often, so a receiver that hangs until its timeout never delays the next detection.

A pass that fails is logged and the next one runs on time: a chain that is down for a minute delays alerts,
it does not stop them. `stop()` waits for the passes in progress to end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from warden.watch.watcher import PassReport, Watcher

logger = logging.getLogger(__name__)
DEFAULT_EVERY_SECONDS = 2.0
DELIVERY_EVERY_SECONDS = 0.25


class WatchLoop:
    def __init__(self, watcher: Watcher, every_seconds: float = DEFAULT_EVERY_SECONDS) -> None:
        self.watcher = watcher
        self.every_seconds = every_seconds
        self.passes = 0
        self.last: PassReport | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> WatchLoop:
        if not self._threads:
            every_delivery = min(DELIVERY_EVERY_SECONDS, self.every_seconds)
            self._threads = [
                threading.Thread(target=self._repeat, args=(self._detect, self.every_seconds), name="warden-watch",
                                 daemon=True),
                threading.Thread(target=self._repeat, args=(self.watcher.deliverer.deliver_due, every_delivery),
                                 name="warden-alert-delivery", daemon=True),
            ]  # fmt: skip
            for thread in self._threads:
                thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _detect(self) -> None:
        self.last = self.watcher.detect()
        self.passes += 1

    def _repeat(self, work: Callable[[], object], every: float) -> None:
        while not self._stop.is_set():
            try:
                work()
            except Exception:  # a pass must never end the loop; the next one may well succeed
                logger.exception("watch: %s failed", getattr(work, "__name__", "a pass"))
            self._stop.wait(every)
