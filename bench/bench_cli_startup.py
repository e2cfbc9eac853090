"""Start-up of the `warden` command (median of several runs), beside its floor measured in the same run:
the interpreter importing the CLI framework (typer + rich) and doing nothing.

Command groups are imported only when they run, so a command that needs neither the chain nor HTTP
libraries (`compose hash`, `attest device-id`) should sit close to the floor; `allow-devices list`
adds the chain client and one list against a fresh anvil.

Run: .venv/bin/python -m bench.bench_cli_startup
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.chain import deploy_app

from bench.common import BenchResult
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import signer_from_key
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil

WARDEN = str(Path(sys.executable).parent / "warden")
RUNS = 7
MANIFEST = json.dumps({"manifest_version": 2, "name": "bench", "runner": "docker-compose"}).encode()


def median_seconds(argv: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.decode()}")
    return statistics.median(times)


def run() -> list[BenchResult]:
    results = []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "WARDEN_HOME": home}
        for name in ("WARDEN_API_URL", "ETH_RPC_URL"):
            env.pop(name, None)
        floor = median_seconds([sys.executable, "-c", "import typer, rich.console"], env)
        manifest = Path(home) / "app-compose.json"
        manifest.write_bytes(MANIFEST)
        anvil = start_anvil()
        try:
            chain = Chain.connect(anvil.url)
            owner = signer_from_key(DEV_PRIVATE_KEY, "bench")
            kms = KmsRegistry(chain, deploy_kms(chain, owner).kms)
            app = deploy_app(chain, owner, kms, device_id=bytes(32), compose_hash=bytes(32))
            commands = {
                "warden version": [WARDEN, "version"],
                "warden compose hash FILE": [WARDEN, "compose", "hash", str(manifest)],
                "warden allow-devices list APP (anvil)": [
                    WARDEN,
                    "allow-devices",
                    "list",
                    app.address,
                    "--rpc-url",
                    anvil.url,
                ],
            }
            for label, argv in commands.items():
                ours = median_seconds(argv, env)
                results.append(BenchResult(f"CLI start-up: {label}", ours, floor, "python importing typer + rich",
                                           kind="overhead", note=f"median of {RUNS} runs"))  # fmt: skip
        finally:
            anvil.stop()
    return results


if __name__ == "__main__":
    for result in run():
        print(result.line())
