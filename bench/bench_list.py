"""Reading an app's allowlist history from a provider that limits eth_getLogs to 10,000 blocks.

A real HTTP proxy (tests/support/limited_rpc.py) in front of anvil refuses eth_getLogs over 10,000 blocks
with -32005 "block range is too large" and presents anvil's short chain 10,000 times longer (anvil_mine
takes minutes per 10,000 blocks, so a 12M-block chain cannot be mined here): the app is created about
10M blocks before the head, with 300 adds and 30 removes spread over that span.

Measured in one run, counted by the proxy: warden cold (empty cache, learns the limit), warden warm, a plain
loop of 10,000-block windows from block 0 with one call per HTTP request (a web3.py-style script), and the
minimum number of windows. Targets: eth_getLogs calls <= 1.05x the minimum, <= 60 HTTP round trips.

Run: .venv/bin/python -m bench.bench_list
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.limited_rpc import LimitedRpc

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.history import read_history
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import LogCache
from warden.chain.rpc import RpcClient
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil

ADDED, REMOVED, LIMIT, SCALE = 300, 30, 10_000, 10_000
EVENTS = ["DeviceAdded", "DeviceRemoved"]


def device(i: int) -> bytes:
    return b"\xd0" + i.to_bytes(31, "big")


def build(chain: Chain) -> AppAuth:
    """An app created about 1,000 node blocks (10M presented blocks) before the head, events spread out."""
    signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
    kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
    chain.rpc.call("anvil_mine", [hex(190)])
    (deployed,) = execute(chain, signer, [kms.deploy_app(signer.address)])
    receipt = require_success(deployed).receipt
    assert receipt is not None
    app = AppAuth(chain, kms.app_from_receipt(receipt))
    writes = [app.add_device(device(i)) for i in range(ADDED)] + [app.remove_device(device(i)) for i in range(REMOVED)]
    for start in range(0, len(writes), 11):
        for outcome in execute(chain, signer, writes[start : start + 11]):
            require_success(outcome)
        chain.rpc.call("anvil_mine", [hex(30)])
    return app


def plain_loop(url: str, app: AppAuth, chain_id: int) -> int:
    """A web3.py-style script: 10,000-block windows from block 0, one eth_getLogs per HTTP request."""
    with RpcClient(url) as rpc:
        chain = Chain(rpc, chain_id)
        topics = [["0x" + app.abi.event_topic(n).hex() for n in EVENTS]]
        head, found = chain.block_number(), 0
        for start in range(0, head + 1, LIMIT):
            found += len(chain.get_logs(app.address, start, min(head, start + LIMIT - 1), topics))
        return found


def main() -> None:
    node = start_anvil()
    try:
        chain = Chain.connect(node.url, timeout=120)
        app = build(chain)
        proxy = LimitedRpc(node.url, max_log_range=LIMIT, block_scale=SCALE)
        with proxy, tempfile.TemporaryDirectory() as tmp:
            cache = LogCache(Path(tmp) / "logs.sqlite")
            rows = []
            for label in ("warden cold", "warden warm"):
                proxy.reset_counts()
                with RpcClient(proxy.url) as rpc:
                    history = read_history(AppAuth(Chain(rpc, chain.chain_id), app.address), EVENTS, cache=cache)
                assert len(history.events) == ADDED + REMOVED, "events lost or counted twice"
                rows.append((label, proxy.calls["eth_getLogs"], proxy.http_requests, sum(proxy.calls.values())))
                if label == "warden cold":
                    created = history.head - sum(history.scan.windows) + 1
            proxy.reset_counts()
            found = plain_loop(proxy.url, app, chain.chain_id)
            assert found == ADDED + REMOVED
            plain = (
                "plain 10k-window loop",
                proxy.calls["eth_getLogs"],
                proxy.http_requests,
                sum(proxy.calls.values()),
            )
            rows.append(plain)
            minimum = -(-(history.head - created + 1) // LIMIT)
        print(f"chain {history.head:,} presented blocks, app created at {created:,}, {ADDED} adds + {REMOVED} removes")
        print(f"provider limit {LIMIT:,} blocks; minimum windows {minimum:,}")
        print(f"{'':24}{'eth_getLogs':>12}{'HTTP':>8}{'calls':>8}")
        for label, logs, http, calls in rows:
            print(f"{label:24}{logs:>12,}{http:>8,}{calls:>8,}")
        cold_logs, cold_http = rows[0][1], rows[0][2]
        print(f"warden cold eth_getLogs / minimum windows: {cold_logs / minimum:.3f} (target <= 1.05)")
        print(f"plain loop HTTP / warden cold HTTP: {rows[2][2] / cold_http:.1f}x (target warden <= 60)")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
