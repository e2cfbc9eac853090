"""Drift alert latency on a whole devnet: `warden devnet node update-firmware prod6` → the signed drift alert
at a webhook receiver on 127.0.0.1 (added with `warden alerts add-webhook`), delivered by the devnet's own
control plane and its watcher. Target: <= 5 s p50.

Each round changes prod6's firmware (a new device id), times from the command's start until the receiver
has the alert naming the new id, then fixes it with `warden allow-devices add APP prod6 --wait` and waits
until /metrics reads warden_app_drifted_nodes{app="shared-key-demo"} 0 again. The floor, measured in the
same rounds: the update-firmware command itself (the identity change recorded, nothing watched yet).

Run: .venv/bin/python -m bench.bench_alerts
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
from typing import Any

import httpx
from tests.support.processes import wait_until
from tests.watch.receiver import receiver

from bench.common import BenchResult

ROUNDS = int(os.environ.get("BENCH_ALERTS_ROUNDS", "5"))
TARGET_S = 5.0
PATIENCE_S = 60.0
WARDEN = str(Path(sys.executable).parent / "warden")
APP = "shared-key-demo"


def warden(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([WARDEN, *args, "--json"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"warden {' '.join(args)} failed: {done.stderr}")
    return json.loads(done.stdout)


def drifted(api_url: str, token: str) -> str | None:
    text = httpx.get(api_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'warden_app_drifted_nodes{{app="{APP}"}} '):
            return line.rsplit(" ", 1)[1]
    return None


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "ETH_RPC"))}
        env |= {"WARDEN_HOME": home}
        warden(env, "devnet", "up", "--detach", "--port", "0")
        try:
            status = warden(env, "devnet", "status")
            api_url, token = status["api_url"], status["api_token"]
            env |= {"WARDEN_API_URL": api_url, "WARDEN_API_TOKEN": token}
            latencies, floors = [], []
            with receiver() as hook:
                warden(env, "alerts", "add-webhook", hook.url)
                wait_until(lambda: drifted(api_url, token) == "0.0", PATIENCE_S, what="the watcher's first pass")
                for _ in range(ROUNDS):
                    seen = len(hook.answered())
                    began = time.perf_counter()
                    warden(env, "devnet", "node", "update-firmware", "prod6")
                    floors.append(time.perf_counter() - began)
                    drift_alert = lambda n=seen: any(r.json()["alert"]["kind"] == "drift" for r in hook.answered()[n:])  # noqa: E731
                    wait_until(drift_alert, PATIENCE_S, what="the drift alert at the receiver")
                    latencies.append(time.perf_counter() - began)
                    warden(env, "allow-devices", "add", APP, "prod6", "--wait")
                    wait_until(lambda: drifted(api_url, token) == "0.0", PATIENCE_S, what="the fix seen by the watcher")
        finally:
            subprocess.run([WARDEN, "devnet", "down"], env=env, capture_output=True, check=False)
    p50, floor = statistics.median(latencies), statistics.median(floors)
    verdict = "meets" if p50 <= TARGET_S else "MISSES"
    note = f"{verdict} the {TARGET_S:g} s target; {ROUNDS} rounds, max {max(latencies):.2f} s"
    return [BenchResult("drift alert at the webhook, p50", p50, floor, "update-firmware itself", kind="overhead",
                        note=note)]  # fmt: skip


if __name__ == "__main__":
    for result in run():
        print(result.line())
