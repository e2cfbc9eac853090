"""`allow-devices list` and `history` through a provider that limits eth_getLogs to 10,000 blocks.

A real HTTP proxy (tests/support/limited_rpc.py) in front of anvil refuses eth_getLogs over 10,000 blocks
with -32005 "block range is too large" and presents anvil's short chain 10,000 times longer (anvil_mine
takes minutes per 10,000 blocks, so a 12M-block chain cannot be mined here): the app is created about
10M blocks before the head, with 1,000 adds and 100 removes spread over that span. Multicall3 is at its
usual address, as on Base and Ethereum.

Measured in one run, counted by the proxy: warden cold (empty cache, learns the limit), warden warm
(list and history), warden cold behind a provider that caps batches at 100 and one that takes no batches,
a plain loop of 10,000-block windows from block 0 with one call per HTTP request and one eth_call per
device (a web3.py-style script), and the minimum number of windows. Targets: cold eth_getLogs calls
<= 1.05x the minimum, <= 60 HTTP round trips; warm list and warm history <= 3 round trips.

Run: .venv/bin/python -m bench.bench_list
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.limited_rpc import LimitedRpc

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import LogCache
from warden.chain.rpc import RpcClient
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, install_multicall, start_anvil
from warden.fleet.devices import DEVICE_EVENTS, history_json, list_devices
from warden.fleet.inventory import Inventory

ADDED, REMOVED, LIMIT, SCALE = 1_000, 100, 10_000, 10_000
SPREAD = 50  # groups of writes; each write is mined in a block of its own (anvil automines)


def device(i: int) -> bytes:
    return b"\xd0" + i.to_bytes(31, "big")


def build(chain: Chain) -> tuple[AppAuth, int]:
    """An app created about 1,000 node blocks (10M presented blocks) before the head, events spread out."""
    signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
    kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
    chain.rpc.call("anvil_mine", [hex(190)])
    (deployed,) = execute(chain, signer, [kms.deploy_app(signer.address)])
    receipt = require_success(deployed).receipt
    assert receipt is not None and deployed.block_number is not None
    app = AppAuth(chain, kms.app_from_receipt(receipt))
    writes = [app.add_device(device(i)) for i in range(ADDED)] + [app.remove_device(device(i)) for i in range(REMOVED)]
    step = -(-len(writes) // SPREAD)
    for start in range(0, len(writes), step):
        for outcome in execute(chain, signer, writes[start : start + step], timeout=120):
            require_success(outcome)
    return app, deployed.block_number * SCALE


def plain_loop(url: str, app: AppAuth, chain_id: int) -> int:
    """A web3.py-style script: 10,000-block windows from block 0, one eth_getLogs per HTTP request, then
    one allowedDeviceIds eth_call per device added."""
    with RpcClient(url) as rpc:
        chain = Chain(rpc, chain_id)
        topics = [["0x" + app.abi.event_topic(n).hex() for n in DEVICE_EVENTS]]
        head, added = chain.block_number(), []
        for start in range(0, head + 1, LIMIT):
            for log in chain.get_logs(app.address, start, min(head, start + LIMIT - 1), topics):
                decoded = app.abi.decode_log(log)
                if decoded is not None and decoded.event == "DeviceAdded":
                    added.append(bytes(decoded.args["deviceId"]))
        plain = AppAuth(chain, app.address)
        return sum(1 for d in dict.fromkeys(added) if plain.call("allowedDeviceIds", d))


def measured(proxy: LimitedRpc, label: str, run: Any) -> tuple[str, int, int, int, float, Any]:
    proxy.reset_counts()
    began = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - began
    return label, proxy.calls["eth_getLogs"], proxy.http_requests, sum(proxy.calls.values()), seconds, result


def main() -> None:
    node = start_anvil()
    try:
        chain = Chain.connect(node.url, timeout=120)
        install_multicall(chain)
        app, created = build(chain)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:

            def listing(proxy: LimitedRpc, cache: LogCache | None) -> Any:
                with RpcClient(proxy.url) as rpc:
                    return list_devices(AppAuth(Chain(rpc, chain.chain_id), app.address), Inventory(), cache)

            def history(proxy: LimitedRpc, cache: LogCache | None) -> Any:
                with RpcClient(proxy.url) as rpc:
                    return history_json(AppAuth(Chain(rpc, chain.chain_id), app.address), Inventory(), cache)

            with LimitedRpc(node.url, max_log_range=LIMIT, block_scale=SCALE) as proxy:
                cache = LogCache(Path(tmp) / "logs.sqlite")
                rows.append(measured(proxy, "warden cold list", lambda: listing(proxy, cache)))
                rows.append(measured(proxy, "warden warm list", lambda: listing(proxy, cache)))
                history(proxy, cache)  # block times of the events, once
                rows.append(measured(proxy, "warden warm history", lambda: history(proxy, cache)))
                plain = measured(proxy, "plain 10k-window loop", lambda: plain_loop(proxy.url, app, chain.chain_id))
            for label, options in (
                ("cold, batches <= 100", {"max_batch": 100}),
                ("cold, no batches", {"batches": False}),
            ):
                with LimitedRpc(node.url, max_log_range=LIMIT, block_scale=SCALE, **options) as capped:
                    cache = LogCache(Path(tmp) / f"{label}.sqlite")
                    rows.append(measured(capped, f"warden {label}", lambda: listing(capped, cache)))  # noqa: B023
        rows.append(plain)
        wanted = ADDED - REMOVED
        for label, *_, result in rows:
            count = (
                result if isinstance(result, int) else len(result) if isinstance(result, list) else len(result.devices)
            )
            expected = ADDED + REMOVED if "history" in label else wanted
            assert count == expected, f"{label}: {count} rows, expected {expected} (lost or counted twice)"
        head = rows[0][5].head
        minimum = -(-(head - created + 1) // LIMIT)
        print(f"chain {head:,} presented blocks, app created at {created:,}, {ADDED:,} adds + {REMOVED} removes")
        print(f"provider limit {LIMIT:,} blocks; minimum windows {minimum:,}")
        print(f"{'':30}{'eth_getLogs':>12}{'HTTP':>8}{'calls':>8}{'seconds':>9}")
        for label, logs, http, calls, seconds, _ in rows:
            print(f"{label:30}{logs:>12,}{http:>8,}{calls:>8,}{seconds:>9.2f}")
        cold, warm, warm_history = rows[0], rows[1], rows[2]
        print(f"warden cold eth_getLogs / minimum windows: {cold[1] / minimum:.3f} (target <= 1.05)")
        ratio = plain[2] / cold[2]
        print(f"warden cold HTTP round trips: {cold[2]} (target <= 60; the plain loop {plain[2]:,}, {ratio:.0f}x)")
        print(f"warden warm list round trips: {warm[2]} (target <= 3)")
        print(f"warden warm history round trips: {warm_history[2]} (target <= 3)")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
