"""Run every benchmark in bench/ and print one table of ratios.

Run: .venv/bin/python bench/run_all.py   (or `make bench`)
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchResult


def main() -> None:
    package = Path(__file__).resolve().parent
    results: list[BenchResult] = []
    for module in sorted(m.name for m in pkgutil.iter_modules([str(package)]) if m.name.startswith("bench_")):
        print(f"running {module} …", file=sys.stderr, flush=True)
        results.extend(importlib.import_module(f"bench.{module}").run())
    width = max(len(r.name) for r in results)
    header = f"{'benchmark':<{width}}  {'warden':>10}  {'baseline':>10}  {'ratio':>7}"
    print(header + "  baseline (ratio: times faster, or times a floor)")
    for r in results:
        ours, baseline = f"{r.ours:>8.2f} {r.unit}", f"{r.baseline:>8.2f} {r.unit}"
        print(f"{r.name:<{width}}  {ours}  {baseline}  {r.ratio:>6.2f}x  {r.baseline_name}")
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")


if __name__ == "__main__":
    main()
