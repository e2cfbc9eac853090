"""The auth webhook when its chain is down or slow (served by uvicorn on 127.0.0.1, anvil + DstackKms + an app):

1. Denials while the RPC refuses connections: p50/p99 over N requests after the first failure (the circuit
   breaker is open), beside the floor measured in the same run: the same webhook answering an invalid body
   (HTTP 400, no chain call). Target: p50 < 200 ms. Also beside the old path (the one-shot client's five
   attempts with backoff against the refused port) and a raw TCP connect to the refused port.
2. Decisions against a slow but live chain (a proxy delaying every request): with the delay under
   `--timeout` the app is allowed, beside the floor of the same JSON-RPC batch sent straight through the
   slow proxy; with the delay over `--timeout` every request is denied, beside the configured timeout
   (ratio ~1.0: the timeout is honoured, not multiplied by retries).

Also reported: how long after the RPC listens again the webhook allows the app (no restart).

Run: .venv/bin/python -m bench.bench_rpc_outage   (run_all.py picks it up as a bench_* module)
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.support.flaky_proxy import FlakyProxy
from tests.support.http_server import serve
from tests.support.processes import free_port

from bench.common import BenchResult
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry, LazyKmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil
from warden.identity.bootinfo import BootInfo
from warden.kms.authorization import Authorizer, boot_check
from warden.kms.webhook import create_webhook_app

DENIALS = int(os.environ.get("BENCH_OUTAGE_REQUESTS", "300"))  # timed denials while the RPC refuses
OLD_PATH_DENIALS = 2  # ~3 s each: enough to show the old path
SLOW_DELAY = 0.2  # seconds the slow proxy adds to every request (under the timeout)
SLOWER_DELAY = 3.0  # seconds, over the timeout
TIMEOUT = 1.0  # the webhook's --timeout in part 2
SLOW_REQUESTS = 30
SLOWER_REQUESTS = 8
OS_IMAGE = hashlib.sha256(b"dstack-0.5.7 image").digest()
COMPOSE_HASH = hashlib.sha256(b'{"name":"bench-outage","runner":"docker-compose"}').digest()
DEVICE = hashlib.sha256(b"bench-outage-device").digest()
ALLOWED = {"isAllowed": True, "reason": "", "gatewayAppId": ""}  # the bench KMS sets no gateway app id
UNAVAILABLE = {"isAllowed": False, "reason": "authorization backend unavailable", "gatewayAppId": ""}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(count: int, request: Callable[[], httpx.Response], expect: Callable[[httpx.Response], bool]) -> list[float]:
    """Latency of `count` requests in a row, each checked with `expect`."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - began)
        assert expect(response), (response.status_code, response.text)
    return times


def app_boot(app: AppAuth) -> BootInfo:
    """A boot of `app` its policy allows."""
    return BootInfo(
        tee_variant="dstack-tdx", mr_aggregated=bytes(32), os_image_hash=OS_IMAGE, mr_system=bytes(32),
        app_id=bytes.fromhex(app.address[2:]), compose_hash=COMPOSE_HASH, instance_id=bytes(20),
        device_id=DEVICE, key_provider_info=b"", tcb_status="UpToDate", advisory_ids=(),
    )  # fmt: skip


def refused_connect(port: int, count: int = 200) -> float:
    """Median seconds of a raw TCP connect to the refused port (the physical floor of noticing it)."""
    times = []
    for _ in range(count):
        began = time.perf_counter()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def outage(anvil_url: str, kms: str, body: dict[str, Any], chain_id: int) -> dict[str, Any]:
    """Part 1: denials while the RPC refuses connections (new path, floor, old path), then recovery."""
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    rpc = RpcClient(dead, timeout=5.0, fail_fast=True, retry_timeouts=False)  # what `auth serve` builds
    with (
        Authorizer(LazyKmsRegistry(rpc, kms), timeout=5.0) as authorizer,
        serve(create_webhook_app(authorizer)) as url,
        httpx.Client(timeout=30) as http,
    ):

        def post() -> httpx.Response:
            return http.post(url + "/bootAuth/app", json=body)

        first = timed(1, post, lambda r: r.json() == UNAVAILABLE)[0]  # opens the breaker
        attempts = rpc.stats.requests
        denials = timed(DENIALS, post, lambda r: r.json() == UNAVAILABLE)
        assert rpc.stats.requests == attempts, "a denial reached for the network while the breaker was open"
        invalid = timed(DENIALS, lambda: http.post(url + "/bootAuth/app", json={}), lambda r: r.status_code == 400)
        began = time.perf_counter()
        with FlakyProxy(anvil_url, port=port):
            while post().json() != ALLOWED:
                time.sleep(0.01)
            recovered = time.perf_counter() - began
    rpc.close()
    tcp = refused_connect(port)

    # the old path: a running webhook on the one-shot client (5 attempts, backoff) whose chain went away
    old_rpc = RpcClient(dead)
    with (
        Authorizer(KmsRegistry(Chain(old_rpc, chain_id), kms), timeout=5.0) as authorizer,
        serve(create_webhook_app(authorizer)) as url,
        httpx.Client(timeout=30) as http,
    ):
        old = timed(OLD_PATH_DENIALS, lambda: http.post(url + "/bootAuth/app", json=body),
                    lambda r: r.json() == UNAVAILABLE)  # fmt: skip
    old_rpc.close()
    return {"first": first, "denials": denials, "invalid": invalid, "old": old, "tcp": tcp, "recovered": recovered}


def slow_chain(anvil_url: str, kms: str, boot: BootInfo, chain_id: int, delay: float, count: int) -> dict[str, Any]:
    """Part 2: decisions through a proxy that delays every request by `delay` seconds, --timeout TIMEOUT."""
    body = boot.webhook_json()
    with FlakyProxy(anvil_url, delay_seconds=delay, hang_seconds=delay + 5) as proxy:
        rpc = RpcClient(proxy.url, timeout=TIMEOUT, fail_fast=True, retry_timeouts=False)
        registry = KmsRegistry(Chain(rpc, chain_id), kms)
        with (
            Authorizer(registry, timeout=TIMEOUT) as authorizer,
            serve(create_webhook_app(authorizer)) as url,
            httpx.Client(timeout=30) as http,
        ):
            expected = ALLOWED if delay < TIMEOUT else UNAVAILABLE
            decisions = timed(count, lambda: http.post(url + "/bootAuth/app", json=body),
                              lambda r: r.json() == expected)  # fmt: skip
        assert rpc.breaker is not None and rpc.breaker.state == "closed", "a slow chain opened the breaker"
        floor = []
        if delay < TIMEOUT:  # the same isAppAllowed + gatewayAppId batch, straight through the slow proxy
            for _ in range(count):
                began = time.perf_counter()
                registry.call_many([("isAppAllowed", (boot_check(boot).as_abi(),)), ("gatewayAppId", ())])
                floor.append(time.perf_counter() - began)
        rpc.close()
    return {"decisions": decisions, "floor": floor}


def run() -> list[BenchResult]:
    quiet = logging.getLogger("warden")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the outages below are on purpose: their warnings would bury the table
    node = start_anvil()
    try:
        chain = Chain.connect(node.url)
        signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
        kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
        for request in (kms.add_os_image(OS_IMAGE), kms.deploy_app(signer.address, device_id=DEVICE,
                                                                   compose_hash=COMPOSE_HASH)):  # fmt: skip
            (outcome,) = execute(chain, signer, [request], timeout=30)
            receipt = require_success(outcome).receipt
        assert receipt is not None
        app = AppAuth.open(chain, kms.app_from_receipt(receipt))
        boot = app_boot(app)
        down = outage(node.url, kms.address, boot.webhook_json(), chain.chain_id)
        slow = slow_chain(node.url, kms.address, boot, chain.chain_id, SLOW_DELAY, SLOW_REQUESTS)
        slower = slow_chain(node.url, kms.address, boot, chain.chain_id, SLOWER_DELAY, SLOWER_REQUESTS)
        chain.close()
    finally:
        node.stop()
        quiet.setLevel(level)
    ms = 1000.0
    p50, p99 = statistics.median(down["denials"]) * ms, percentile(down["denials"], 0.99) * ms
    floor = statistics.median(down["invalid"]) * ms
    old = statistics.median(down["old"]) * ms
    slow_p50, slow_floor = statistics.median(slow["decisions"]) * ms, statistics.median(slow["floor"]) * ms
    slower_p50, slower_p99 = statistics.median(slower["decisions"]) * ms, max(slower["decisions"]) * ms
    return [
        BenchResult(
            name="webhook denial, RPC refusing, p50",
            ours=p50,
            baseline=floor,
            baseline_name="floor: same webhook, invalid body (400, no chain call)",
            unit="ms",
            kind="overhead",
            note=f"p99 {p99:.2f} ms over {len(down['denials'])} denials after the first ({down['first'] * ms:.1f} ms); "
            f"raw TCP connect refused on 127.0.0.1: {down['tcp'] * 1e6:.0f} us; target p50 < 200 ms; "
            f"recovered {down['recovered']:.2f} s after the RPC listened again (no restart)",
        ),
        BenchResult(
            name="webhook denial, RPC refusing, vs old path",
            ours=p50,
            baseline=old,
            baseline_name="old path: 5 attempts with backoff per request",
            unit="ms",
            note=f"old path median of {len(down['old'])} denials",
        ),
        BenchResult(
            name=f"decision, chain +{SLOW_DELAY * ms:.0f} ms slow, p50",
            ours=slow_p50,
            baseline=slow_floor,
            baseline_name="floor: the JSON-RPC batch straight through the slow proxy",
            unit="ms",
            kind="overhead",
            note=f"every one of {len(slow['decisions'])} allowed; --timeout {TIMEOUT:g} s",
        ),
        BenchResult(
            name=f"decision, chain +{SLOWER_DELAY:g} s slow, p50",
            ours=slower_p50,
            baseline=TIMEOUT * ms,
            baseline_name=f"--timeout {TIMEOUT:g} s",
            unit="ms",
            kind="overhead",
            note=f"max {slower_p99:.0f} ms; every one of {len(slower['decisions'])} denied "
            "(authorization backend unavailable); the breaker stayed closed",
        ),
    ]


if __name__ == "__main__":
    began = time.monotonic()
    for result in run():
        print(result.line())
    print(f"({time.monotonic() - began:.1f} s in all, setup included)")
