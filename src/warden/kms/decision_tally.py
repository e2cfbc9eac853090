"""How many boots the KMS and the auth webhook allowed and refused, by reason, in this process.

Thread-safe counts the control plane's `/metrics` exposes (`warden_kms_decisions_total`). A reason is the
contract's own words ("Device not allowed" …) with any cause after a colon dropped, so the label set stays
small: "authorization backend unavailable: ReadTimeout" counts as "authorization backend unavailable".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter

DecisionKey = tuple[str, bool, str]  # (service: kms | webhook, allowed, reason)


class DecisionTally:
    def __init__(self) -> None:
        self._counts: Counter[DecisionKey] = Counter()
        self._lock = threading.Lock()

    def record(self, service: str, allowed: bool, reason: str) -> None:
        label = "allowed" if allowed else (reason.split(":", 1)[0].strip()[:100] or "refused")
        with self._lock:
            self._counts[(service, allowed, label)] += 1

    def snapshot(self) -> dict[DecisionKey, int]:
        with self._lock:
            return dict(self._counts)


DECISIONS = DecisionTally()  # the process's tally: the KMS and the webhook record here, /metrics reads it


def register_decisions(registry: CollectorRegistry, decisions: Mapping[DecisionKey, int]) -> None:
    """`warden_kms_decisions_total{service, allowed, reason}` from a tally's snapshot, into `registry`."""
    series = PromCounter(
        "warden_kms_decisions",
        "Boots the KMS and the auth webhook allowed or refused, by reason.",
        ["service", "allowed", "reason"],
        registry=registry,
    )
    for (service, allowed, reason), count in sorted(decisions.items()):
        series.labels(service, str(allowed).lower(), reason).inc(count)


def decisions_text() -> bytes:
    """This process's decisions in Prometheus text format (GET /metrics of `kms serve` and `auth serve`)."""
    registry = CollectorRegistry(auto_describe=True)
    register_decisions(registry, DECISIONS.snapshot())
    return generate_latest(registry)
