"""`warden allow-devices list` on an app with 1,000 allowed devices (plus 500 added then removed) spread
over 20,000 blocks, read from a node that keeps no old state (like a pruned node).

Measured in one run: warden cold (empty cache), warden warm (local log cache), and a straightforward
script (eth_getLogs in fixed 1,000-block windows from genesis, one eth_call per device).
Targets: cold <= 2 s and <= 60 RPC requests; warm <= 0.3 s.

The 20,000-block chain takes minutes to mine (anvil's cost per block grows with height), so it is
built once and kept as an anvil state file in bench/.cache/.

Run: .venv/bin/python -m bench.bench_list
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult
from warden.chain.abi import DecodedLog
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import LogCache
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil
from warden.fleet.devices import list_devices
from warden.fleet.inventory import Inventory

ALLOWED, REMOVED, BLOCKS = 1_000, 500, 20_000
CACHE = Path(__file__).resolve().parent / ".cache"
STATE = CACHE / "list-20k-state.json"
META = CACHE / "list-20k.json"


def device(i: int) -> bytes:
    return b"\xd0" + i.to_bytes(31, "big")


def build() -> None:
    """Deploy an app, add 1,500 devices and remove 500 of them, spread over 20,000 blocks."""
    CACHE.mkdir(exist_ok=True)
    node = start_anvil(state_path=STATE)
    try:
        chain = Chain.connect(node.url, timeout=300)
        signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
        kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
        (deployed,) = execute(chain, signer, [kms.deploy_app(signer.address)])
        receipt = require_success(deployed).receipt
        assert receipt is not None
        app = AppAuth(chain, kms.app_from_receipt(receipt))
        writes = [app.add_device(device(i)) for i in range(ALLOWED + REMOVED)]
        writes += [app.remove_device(device(ALLOWED + i)) for i in range(REMOVED)]
        rounds = 20
        gap = -(-(BLOCKS - len(writes) - chain.block_number()) // rounds)  # round up: reach BLOCKS
        per_round = -(-len(writes) // rounds)
        for r in range(rounds):
            print(f"building: round {r + 1}/{rounds}", flush=True)
            for outcome in execute(chain, signer, writes[r * per_round : (r + 1) * per_round], timeout=300):
                require_success(outcome)
            chain.rpc.call("anvil_mine", [hex(gap)])
        short = BLOCKS - chain.block_number()
        if short > 0:  # several pipelined writes may share a block
            chain.rpc.call("anvil_mine", [hex(short)])
        META.write_text(json.dumps({"app": app.address, "head": chain.block_number()}))
    finally:
        node.stop(timeout=120)  # anvil writes the state file on the way out


def naive_list(chain: Chain, app: AppAuth, head: int) -> set[bytes]:
    """What a straightforward script does: fixed windows from genesis, one call per device."""
    topics = [["0x" + app.abi.event_topic(n).hex() for n in ("DeviceAdded", "DeviceRemoved")]]
    events: list[DecodedLog] = []
    for start in range(0, head + 1, 1_000):
        for log in chain.get_logs(app.address, start, min(head, start + 999), topics):
            decoded = app.abi.decode_log(log)
            if decoded:
                events.append(decoded)
    candidates = {bytes(e.args["deviceId"]) for e in events if e.event == "DeviceAdded"}
    return {d for d in candidates if app.is_device_allowed(d)}


def run() -> list[BenchResult]:
    if not (STATE.exists() and META.exists()):
        build()
    meta = json.loads(META.read_text())
    node = start_anvil(state_path=STATE)
    try:
        expected = {device(i) for i in range(ALLOWED)}

        def timed_list(cache: LogCache) -> tuple[float, int]:
            chain = Chain.connect(node.url)
            began = time.monotonic()
            allowlist = list_devices(AppAuth.open(chain, meta["app"]), Inventory(), cache)
            elapsed = time.monotonic() - began
            assert {d.device_id for d in allowlist.devices} == expected, "wrong device set"
            requests = chain.rpc.stats.requests
            chain.close()
            return elapsed, requests

        with tempfile.TemporaryDirectory() as tmp:
            cache = LogCache(Path(tmp) / "logs.sqlite")
            cold, cold_requests = timed_list(cache)
            warm, warm_requests = timed_list(cache)

        chain = Chain.connect(node.url)
        began = time.monotonic()
        found = naive_list(chain, AppAuth(chain, meta["app"]), chain.block_number())
        naive = time.monotonic() - began
        naive_requests = chain.rpc.stats.requests
        assert found == expected
        chain.close()
    finally:
        node.stop()
    span = f"{ALLOWED} allowed + {REMOVED} removed over {meta['head']} blocks"
    return [
        BenchResult(
            name="allow-devices list, cold",
            ours=cold,
            baseline=naive,
            baseline_name="fixed windows + one call per device",
            note=f"{span}; {cold_requests} RPC requests vs {naive_requests}; targets <= 2 s, <= 60 requests",
        ),
        BenchResult(
            name="allow-devices list, warm cache",
            ours=warm,
            baseline=cold,
            baseline_name="warden cold",
            note=f"{warm_requests} RPC requests; target <= 0.3 s",
        ),
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
