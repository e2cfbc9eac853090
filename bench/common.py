"""What every benchmark returns, so `run_all.py` can print one table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchResult:
    name: str
    ours: float  # seconds (or the unit below) for warden's way
    baseline: float  # the same work done the peer's / naive way, measured in the same run
    baseline_name: str
    unit: str = "s"
    note: str = ""
    # "speedup": baseline / ours (higher is better); "overhead": ours / baseline against a floor (lower is better)
    kind: str = "speedup"

    @property
    def ratio(self) -> float:
        if self.kind == "overhead":
            return self.ours / self.baseline if self.baseline else float("inf")
        return self.baseline / self.ours if self.ours else float("inf")

    def line(self) -> str:
        return (
            f"{self.name}: warden {self.ours:.2f} {self.unit} vs {self.baseline_name} {self.baseline:.2f} "
            f"{self.unit} -> {self.ratio:.2f}x {'of the floor' if self.kind == 'overhead' else 'faster'}"
            + (f" ({self.note})" if self.note else "")
        )


def p50_ms(call: Callable[[], object], rounds: int = 25) -> float:
    """The median of `rounds` timed calls, in milliseconds, after one untimed call (connections, caches,
    first-use imports warmed)."""
    call()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000
