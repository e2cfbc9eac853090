"""Cold start of the whole devnet (target: <= 15 s once installed): `warden devnet up --detach` in a fresh
home — anvil, contracts, PKI, four nodes, KMS, webhook, control plane, three CVMs booted — beside the floor
measured in the same run: anvil alone starting and answering.

Run: .venv/bin/python -m bench.bench_devnet
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult
from warden.chain.connection import Chain
from warden.devnet.anvil import start_anvil

TARGET_S = 15.0
WARDEN = str(Path(sys.executable).parent / "warden")


def run() -> list[BenchResult]:
    began = time.perf_counter()
    anvil = start_anvil()
    Chain.connect(anvil.url).close()
    floor = time.perf_counter() - began
    anvil.stop()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "WARDEN_HOME": home}
        began = time.perf_counter()
        started = subprocess.run([WARDEN, "devnet", "up", "--detach", "--port", "0", "--json"], env=env,
                                 capture_output=True, text=True, check=False)  # fmt: skip
        cold = time.perf_counter() - began
        subprocess.run([WARDEN, "devnet", "down"], env=env, capture_output=True, check=False)
    if started.returncode != 0:
        raise RuntimeError(f"devnet up failed: {started.stderr}")
    verdict = "meets" if cold <= TARGET_S else "MISSES"
    return [
        BenchResult(
            "devnet cold start (whole stack, 3 CVMs booted)",
            cold,
            floor,
            "anvil alone starting",
            kind="overhead",
            note=f"{verdict} the {TARGET_S:.0f} s target ({cold:.1f} s, CLI start-up included)",
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
