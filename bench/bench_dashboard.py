"""The control plane at fleet scale, served by a real `warden serve` process: 2,000 nodes, 5,000 CVMs and an app
allowing 1,000 devices on anvil (with Multicall3, as on Base).

Targets (issue 15): the app page <= 300 ms p50 and <= 300 KB of HTML; API list pages <= 50 ms p50; the
`warden serve` process <= 200 MiB RSS after serving them. The app page is set beside the read it used to make
on every view, measured in the same run: the allowlist read from the chain with a warm scan cache (new logs
+ one membership check of every device). Times are HTTP round trips from this process (server time and the
client's own share).

Setup: the app is deployed with device 0, devices 1-999 added in one pipelined run of transactions; the
inventory (SQLite) has nodes 0-1,999 (node i presents device i) and 5,000 running CVMs of the app on them
(i % 2,000), so 1,000 running nodes are not allowed and the page carries the warning.

Run: .venv/bin/python -m bench.bench_dashboard
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from tests.support.dashboard import sign_in
from tests.support.processes import answers_health, free_port, wait_until

from bench.bench_api_pages import CVMS, NODES, device, seed
from bench.common import BenchResult, p50_ms
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, install_multicall, start_anvil
from warden.fleet.devices import list_devices
from warden.fleet.inventory import Inventory
from warden.fleet.scan_store import FleetScanCache
from warden.fleet.store import Fleet

ALLOWED = 1_000
PAGE_TARGET_MS, HTML_TARGET_KB, API_TARGET_MS, RSS_TARGET_MIB = 300.0, 300.0, 50.0, 200.0
WARDEN = Path(sys.executable).with_name("warden")


def rss_mib(pid: int) -> float:
    """The process's resident set (VmRSS in /proc/PID/status), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def deploy_allowing(chain: Chain) -> AppAuth:
    """An app allowing devices 0 .. ALLOWED-1 (the adds sent with consecutive nonces, waited for once)."""
    owner = signer_from_key(DEV_PRIVATE_KEY, "bench")
    kms = KmsRegistry(chain, deploy_kms(chain, owner).kms)
    (created,) = execute(chain, owner, [kms.deploy_app(owner.address, device_id=device(0))])
    receipt = require_success(created).receipt
    assert receipt is not None
    app = AppAuth(chain, kms.app_from_receipt(receipt))
    for outcome in execute(chain, owner, [app.add_device(device(i)) for i in range(1, ALLOWED)], timeout=300):
        require_success(outcome)
    return app


def run() -> list[BenchResult]:
    anvil = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            chain = Chain.connect(anvil.url)
            install_multicall(chain)
            return _measure(chain, deploy_allowing(chain), Path(tmp))
    finally:
        anvil.stop()


def _measure(chain: Chain, app: AppAuth, tmp: Path) -> list[BenchResult]:
    url = f"sqlite:///{tmp / 'warden.db'}"
    fleet = Fleet.open(url)
    token = seed(fleet, app.address, chain.chain_id)
    port = free_port()
    env = os.environ | {"WARDEN_HOME": str(tmp / "home"), "WARDEN_PROFILE": ""}
    args = [str(WARDEN), "serve", "--workers", "1", "--port", str(port), "--database-url", url,
            "--rpc-url", chain.rpc.url]  # fmt: skip
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers_health(base_url) or server.poll() is not None, seconds=60)
        assert server.poll() is None, server.stderr.read() if server.stderr else "warden serve exited"
        results = _requests(base_url, token, app)
        rss = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    floor = _fresh_read_ms(app, fleet)
    fleet.close()
    page_ms, html_kb, api = results
    return [
        BenchResult(
            f"app page, {NODES:,} nodes + {CVMS:,} CVMs + {ALLOWED:,} allowed devices (p50)",
            page_ms,
            floor,
            "a fresh allowlist read from the chain (warm scan cache), as every view used to make",
            unit="ms",
            kind="overhead",
            note=f"{'meets' if page_ms <= PAGE_TARGET_MS else 'MISSES'} the {PAGE_TARGET_MS:.0f} ms target",
        ),
        BenchResult(
            "app page HTML",
            html_kb,
            HTML_TARGET_KB,
            "the target",
            unit="KB",
            kind="overhead",
            note=f"{'meets' if html_kb <= HTML_TARGET_KB else 'MISSES'} the {HTML_TARGET_KB:.0f} KB target",
        ),
        *(
            BenchResult(
                f"GET {path} (p50)",
                ms,
                API_TARGET_MS,
                "the target",
                unit="ms",
                kind="overhead",
                note=f"{'meets' if ms <= API_TARGET_MS else 'MISSES'} the {API_TARGET_MS:.0f} ms target",
            )
            for path, ms in api.items()
        ),
        BenchResult(
            "`warden serve` RSS after these requests",
            rss,
            RSS_TARGET_MIB,
            "the target",
            unit="MiB",
            kind="overhead",
            note=f"{'meets' if rss <= RSS_TARGET_MIB else 'MISSES'} the {RSS_TARGET_MIB:.0f} MiB target",
        ),
    ]


def _requests(base_url: str, token: str, app: AppAuth) -> tuple[float, float, dict[str, float]]:
    """The app page's p50 and size, and each API list page's p50 (limit 100)."""
    page_url = f"/apps/{app.address}"
    with sign_in(base_url, token) as browser:
        first = browser.get(page_url)  # cold: the app's logs are scanned into the database
        assert first.status_code == 200, first.status_code
        assert 'rel="next"' in first.text and "allowlist-warning" in first.text
        page_ms = p50_ms(lambda: browser.get(page_url).raise_for_status())
        html_kb = len(browser.get(page_url).content) / 1000
    api: dict[str, float] = {}
    paths = ("/nodes", "/cvms", f"/cvms?app={app.address}", f"/apps/{app.address}/device-allowlist",
             f"/apps/{app.address}/history")  # fmt: skip
    with httpx.Client(base_url=base_url + "/api", headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for path in paths:
            joined = path + ("&" if "?" in path else "?") + "limit=100"
            answer = http.get(joined).raise_for_status().json()
            assert answer["next_cursor"], f"{path}: one page of many"
            api["/api" + joined.replace(app.address, "APP")] = p50_ms(
                lambda: http.get(joined).raise_for_status()  # noqa: B023 (called in this iteration)
            )
    return page_ms, html_kb, api


def _fresh_read_ms(app: AppAuth, fleet: Fleet) -> float:
    """The allowlist read the page used to make on every view: new logs from the (warm) scan cache and one
    membership check of every device."""
    cache = FleetScanCache(fleet)
    listed = list_devices(app, Inventory(), cache)
    assert len(listed.devices) == ALLOWED
    return p50_ms(lambda: list_devices(app, Inventory(), cache))


if __name__ == "__main__":
    for result in run():
        print(result.line())
