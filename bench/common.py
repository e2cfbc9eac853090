"""What every benchmark returns, so `run_all.py` can print one table."""

from __future__ import annotations

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
