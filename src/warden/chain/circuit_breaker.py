"""A circuit breaker for an RPC that refuses connections: fail at once while it is down, re-probe in the
background, and close by itself as soon as it answers again.

States:

- **closed** (normal): calls go to the network with the client's own timeout and retries.
- **open**: entered when every endpoint refused the connection (connection refused, DNS failure, any other
  connect error). Calls fail at once without touching the network; a background thread probes the RPC
  after `first_delay`, then at doubling intervals capped at `max_delay`, each probe bounded by `timeout`.
- open → closed: the first probe that gets an answer.

A slow or erroring node is not a refusal: timeouts, HTTP 429/5xx and JSON-RPC errors never open the breaker.
The breaker knows nothing about JSON-RPC: the client gives it a probe and asks it before each call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("warden.chain.circuit_breaker")

BreakerState = Literal["closed", "open"]


@dataclass(frozen=True)
class ProbeSchedule:
    """When an open breaker re-probes: after `first_delay` s, doubling up to `max_delay` s; `timeout` per probe."""

    first_delay: float = 0.05
    max_delay: float = 2.0
    timeout: float = 1.0


class CircuitBreaker:
    """Thread-safe; `probe()` returns True when the RPC answered (it must not raise, but may)."""

    def __init__(
        self,
        probe: Callable[[], bool],
        *,
        name: str = "RPC",
        schedule: ProbeSchedule | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name  # shown in logs: must already be free of credentials
        self.schedule = schedule or ProbeSchedule()
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._state: BreakerState = "closed"
        self._cause = ""
        self._opened_at = 0.0
        self._thread: threading.Thread | None = None
        self.outages = 0  # times it opened
        self.probes = 0  # probes sent, over every outage
        self.fast_failures = 0  # calls refused at once while open (no network attempt)

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def cause(self) -> str:
        """Why the breaker last opened (e.g. `cannot connect (ConnectError)`)."""
        return self._cause

    def open_for(self) -> float:
        """Seconds since the breaker opened; 0 when closed."""
        with self._lock:
            return self._clock() - self._opened_at if self._state == "open" else 0.0

    def allow(self) -> bool:
        """May a call go to the network now? False (counted as a fast failure) while open."""
        with self._lock:
            if self._state == "closed":
                return True
            self.fast_failures += 1
            return False

    def trip(self, cause: str) -> None:
        """Every endpoint refused the connection: open (once per outage, logged once) and start probing."""
        with self._lock:
            if self._state == "open" or self._stopped.is_set():
                return
            self._state, self._cause, self._opened_at = "open", cause, self._clock()
            self.outages += 1
            failed_before = self.fast_failures
            thread = threading.Thread(
                target=self._probe_until_answered, args=(failed_before,), name="warden-rpc-probe", daemon=True
            )
            self._thread = thread
        log.warning(
            "%s refuses connections (%s): failing calls at once and re-probing every <=%gs until it answers",
            self.name,
            cause,
            self.schedule.max_delay,
        )
        thread.start()

    def stop(self) -> None:
        """End the probe thread (the client is closing); the breaker stays in its current state."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.schedule.timeout + 1.0)

    def _probe_until_answered(self, failed_before: int) -> None:
        delay = self.schedule.first_delay
        while not self._stopped.wait(delay):
            with self._lock:
                self.probes += 1
            try:
                answered = self._probe()
            except Exception:  # a probe that raises is a probe that failed; the thread must live on
                answered = False
            if answered:
                with self._lock:
                    down_for = self._clock() - self._opened_at
                    failed_fast = self.fast_failures - failed_before
                    self._state, self._thread = "closed", None
                log.info("%s answers again after %.1fs (%d calls failed at once meanwhile)", self.name, down_for,
                         failed_fast)  # fmt: skip
                return
            delay = min(delay * 2, self.schedule.max_delay)
