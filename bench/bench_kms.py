"""GetAppKey end to end on the devnet (anvil + DstackKms + an app, mock Intel PKI, the KMS served by uvicorn):
p50/p99 latency and requests/s at 1, 8 and 32 concurrent callers, beside the floor measured in the same run:
one quote verify + one eth_call of DstackKms.isAppAllowed + the key derivation, in-process, no HTTP.
Target: p50 <= 2x the floor at 1 caller (at 8 and 32 callers latency also holds the queueing).

Quotes are made (and request bodies encoded) before anything is timed. Every answer must be HTTP 200,
and a few per level are opened with the requester's X25519 key and checked against the derived keys.

Then `warden kms serve --workers 2` against `--workers 1`, both as processes on the same keys and chain:
requests/s at 32 callers (target: 2 workers >= 1.7x one worker's; on a 2-core machine the load generator
shares those cores).

Run: .venv/bin/python -m bench.bench_kms
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.http_server import serve
from tests.support.processes import answers_health, free_port, wait_until

from bench.common import BenchResult
from warden.chain.app import BootCheck
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, signer_from_key
from warden.chain.tx import TxRequest, execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil
from warden.identity.quote import quote_bytes, verify_quote
from warden.keys.app_keys import RootKeys, derive_app_keys
from warden.keys.sealed_box import new_key_pair, open_sealed, report_data_for
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.authorization import Authorizer, boot_check
from warden.kms.keystore import load_or_generate_root_keys
from warden.kms.server import create_kms_app
from warden.kms.service import APP_KEY_PURPOSE, KmsService
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

REQUESTS = int(os.environ.get("BENCH_KMS_REQUESTS", "400"))  # distinct (key, quote) pairs, reused round-robin
LEVELS = ((1, 150), (8, 300), (32, 300))  # (concurrent callers, timed requests)
CHECKED = 3  # answers per level opened with the requester's key
OS_IMAGE = hashlib.sha256(b"dstack-0.5.7 image").digest()
COMPOSE_HASH = hashlib.sha256(b'{"name":"bench-kms","runner":"docker-compose"}').digest()
KEY_PROVIDER = b'{"name":"kms","id":"devnet"}'


@dataclass(frozen=True)
class Prepared:
    private_key: bytes
    body: bytes  # the GetAppKey request, JSON-encoded ahead of time
    quote: bytes
    check: BootCheck  # what isAppAllowed is asked for this caller (for the floor)
    app_id: bytes
    instance_id: bytes


@dataclass(frozen=True)
class Level:
    callers: int
    latencies: list[float]  # seconds, one per request
    wall: float
    answers: list[tuple[int, bytes]]  # (request index, body) of a few answers

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def send(chain: Chain, signer: Signer, request: TxRequest) -> dict[str, Any]:
    (outcome,) = execute(chain, signer, [request], timeout=30)
    receipt = require_success(outcome).receipt
    assert receipt is not None
    return receipt


def prepare(service: KmsService, node: SimNode, pki: MockIntelPki, app_id: bytes) -> list[Prepared]:
    """REQUESTS callers of one app on one node, each its own instance, X25519 key and quote."""
    prepared = []
    for i in range(REQUESTS):
        cvm = SimCvm(node, pki, app_id=app_id, compose_hash=COMPOSE_HASH, instance_id=(i + 1).to_bytes(20, "big"),
                     os_image_hash=OS_IMAGE, key_provider=KEY_PROVIDER)  # fmt: skip
        private, public = new_key_pair()
        attestation = cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, public))
        body = {"api_version": 1, "attestation": attestation, "requester_key": public.hex()}
        boot = service.policy.boot_info(attestation, report_data_for(APP_KEY_PURPOSE, public))
        quote = quote_bytes(attestation["quote"].encode())
        prepared.append(
            Prepared(private, json.dumps(body).encode(), quote, boot_check(boot), boot.app_id, boot.instance_id)
        )
    return prepared


def floor(service: KmsService, kms: KmsRegistry, prepared: list[Prepared]) -> list[float]:
    """Per request: verify the quote, one isAppAllowed eth_call, derive the app keys; sequential, no HTTP."""
    collateral = service.policy.collateral(b"")
    root_ca, keys = service.policy.root_ca_der, service.keys
    times = []
    for p in prepared:
        began = time.perf_counter()
        verify_quote(p.quote, collateral, int(time.time()), root_ca)
        allowed, reason = kms.is_app_allowed(p.check)
        derive_app_keys(keys, p.app_id, p.instance_id)
        times.append(time.perf_counter() - began)
        assert allowed, reason
    return times


def load(url: str, prepared: list[Prepared], callers: int, count: int) -> Level:
    """`count` GetAppKey requests from `callers` threads, each with its own keep-alive client."""
    endpoint = f"{url}/prpc/KMS.GetAppKey"
    headers = {"content-type": "application/json"}
    clients = [httpx.Client(timeout=60) for _ in range(callers)]
    try:
        for k, client in enumerate(clients):  # open every connection (and warm the server) before timing
            response = client.post(endpoint, content=prepared[-1 - k % len(prepared)].body, headers=headers)
            assert response.status_code == 200, response.text
        start = threading.Barrier(callers + 1)

        def caller(k: int) -> list[tuple[int, float, int, bytes]]:
            client, done = clients[k], []
            start.wait()
            for n in range(k, count, callers):
                index = n % len(prepared)
                began = time.perf_counter()
                response = client.post(endpoint, content=prepared[index].body, headers=headers)
                done.append((index, time.perf_counter() - began, response.status_code, response.content))
            return done

        with ThreadPoolExecutor(max_workers=callers) as pool:
            futures = [pool.submit(caller, k) for k in range(callers)]
            start.wait()
            began = time.perf_counter()
            results = [r for future in futures for r in future.result()]
            wall = time.perf_counter() - began
    finally:
        for client in clients:
            client.close()
    failed = [(status, body[:200]) for _, _, status, body in results if status != 200]
    assert not failed, f"{len(failed)} of {count} requests failed at {callers} callers, e.g. {failed[0]}"
    assert len(results) == count
    sampled = results[:: max(1, count // CHECKED)][:CHECKED]  # spread over the callers and the run
    return Level(callers, [r[1] for r in results], wall, [(r[0], r[3]) for r in sampled])


def check_answers(level: Level, prepared: list[Prepared], keys: RootKeys) -> None:
    """The answers really carry this caller's keys: they open with its private key and match the derivation."""
    for index, body in level.answers:
        p = prepared[index]
        released = json.loads(open_sealed(p.private_key, bytes.fromhex(json.loads(body)["sealed_keys"])))
        expected = derive_app_keys(keys, p.app_id, p.instance_id)
        assert released["disk_crypt_key"] == expected.disk_crypt_key.hex()
        assert released["k256_key"] == expected.k256_key.hex()


WARDEN = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "warden")
WORKERS_LEVEL = (32, 300)


def serve_process(kms: KmsRegistry, rpc_url: str, files: Path, workers: int) -> tuple[subprocess.Popen[str], str]:
    """`warden kms serve --workers N` on a free port, up and answering /health."""
    port = free_port()
    process = subprocess.Popen(
        [WARDEN, "kms", "serve", "--port", str(port), "--workers", str(workers), "--kms", kms.address,
         "--rpc-url", rpc_url, "--root-ca", str(files / "root.der"), "--collateral", str(files / "collateral.json"),
         "--key-dir", str(files / "keys")],
        env={**os.environ, "WARDEN_HOME": str(files / "home")}, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers_health(url), seconds=30, interval=0.1)
    except AssertionError:
        process.kill()
        raise RuntimeError(f"kms serve --workers {workers} did not come up") from None
    return process, url


def workers_levels(kms: KmsRegistry, rpc_url: str, files: Path, prepared: list[Prepared]) -> dict[int, Level]:
    """The same 32-caller load against one worker and against two."""
    levels = {}
    for workers in (1, 2):
        process, url = serve_process(kms, rpc_url, files, workers)
        try:
            levels[workers] = load(url, prepared, *WORKERS_LEVEL)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    return levels


def run() -> list[BenchResult]:
    node = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            chain = Chain.connect(node.url)
            signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
            kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
            send(chain, signer, kms.add_os_image(OS_IMAGE))
            pki = MockIntelPki.load_or_create(Path(tmp) / "pki")
            sim = SimNode.load_or_create(Path(tmp) / "node", "bench", "devnet")
            deploy = kms.deploy_app(signer.address, device_id=sim.device_id, compose_hash=COMPOSE_HASH)
            app_id = bytes.fromhex(kms.app_from_receipt(send(chain, signer, deploy))[2:])

            policy = AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)
            with Authorizer(kms) as authorizer:
                service = KmsService(RootKeys.generate(), authorizer, policy)
                prepared = prepare(service, sim, pki, app_id)
                floors = floor(service, kms, prepared)
                with serve(create_kms_app(service)) as url:
                    levels = [load(url, prepared, callers, count) for callers, count in LEVELS]
                floors += floor(service, kms, prepared)  # again after the load, so drift hits both alike
            for level in levels:
                check_answers(level, prepared, service.keys)
            files = Path(tmp)
            (files / "root.der").write_bytes(pki.root_ca_der)
            (files / "collateral.json").write_text(collateral_json(pki))
            per_workers = workers_levels(kms, node.url, files, prepared)
            served_keys, _ = load_or_generate_root_keys(files / "keys")
            for level in per_workers.values():
                check_answers(level, prepared, served_keys)
            chain.close()
    finally:
        node.stop()
    floor_ms = statistics.median(floors) * 1000
    cores = os.cpu_count() or 1
    results = []
    for level in levels:
        p50, p99 = statistics.median(level.latencies) * 1000, level.percentile(0.99) * 1000
        rate = len(level.latencies) / level.wall
        queueing = f"; at {level.callers} callers on {cores} cores latency includes queueing in one server process"
        results.append(
            BenchResult(
                name=f"KMS GetAppKey p50, {level.callers} caller{'s' if level.callers > 1 else ''}",
                ours=p50,
                baseline=floor_ms,
                baseline_name="floor: verify + eth_call + derive",
                unit="ms",
                kind="overhead",
                note=f"p99 {p99:.2f} ms, {rate:.0f} req/s over {len(level.latencies)} requests; "
                f"target p50 <= 2x the floor (at 1 caller){queueing if level.callers > 1 else ''}",
            )
        )
    one, two = (len(per_workers[n].latencies) / per_workers[n].wall for n in (1, 2))
    results.append(
        BenchResult(
            name=f"KMS GetAppKey throughput at {WORKERS_LEVEL[0]} callers, kms serve --workers 2",
            ours=1000 / two,
            baseline=1000 / one,
            baseline_name="--workers 1",
            unit="ms/request",
            note=f"{two:.0f} vs {one:.0f} req/s on {cores} cores (the load generator shares them); target >= 1.7x",
        )
    )
    return results


if __name__ == "__main__":
    began = time.monotonic()
    for result in run():
        print(result.line())
    print(f"({time.monotonic() - began:.1f} s in all, setup included)")
