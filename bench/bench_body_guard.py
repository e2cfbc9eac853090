"""The JSON nesting scan every service runs before decoding, on 1 MiB of the worst bodies there are.

Floor: `json.loads` of the same body (or of a valid body of the same size when the hostile one does not
parse), the work the service would do anyway. The scan must stay linear: a string pattern that can fail
after a long scan turns 1 MiB of escaped quotes into hours of CPU per request.

Run: .venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bench.common import BenchResult
from warden.jsonbody import nests_deeper_than

MIB = 1 << 20
VALID_FLOOR = b"[" + b'"' + b"x" * (MIB - 4) + b'"]'  # a valid 1 MiB body json.loads reads in one pass

BODIES: dict[str, bytes] = {
    "wide and shallow": b"[" + b"[1, {}]," * 130_000 + b"[]]",
    "escaped backslashes": b"[" * 60 + b'"' + b"\\\\" * 500_000 + b'"' + b"]" * 60,
    "empty strings": b"[" * 60 + b'"",' * 340_000 + b'""' + b"]" * 60,
    "unterminated escaped quotes": b"[" * 60 + b"{}," * 10 + b'"' + b'\\"' * 500_000,
    "100,000 deep": b"[" * 100_000 + b"]" * 100_000,
}


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of `repeat` runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def decode_floor(body: bytes) -> float:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        body = VALID_FLOOR  # the hostile body does not parse: a valid one of the same size
    return best_of(5, lambda: json.loads(body))


def run() -> list[BenchResult]:
    results = []
    for name, body in BODIES.items():
        scan = best_of(5, lambda body=body: nests_deeper_than(body))  # type: ignore[misc]
        floor = decode_floor(body)
        results.append(
            BenchResult(
                name=f"nesting scan, 1 MiB {name}",
                ours=scan,
                baseline=floor,
                baseline_name="floor: json.loads of a 1 MiB body",
                unit="ms",
                kind="overhead",
                note=f"{len(body) / MIB:.2f} MiB; refused as too deep: {nests_deeper_than(body)}",
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
