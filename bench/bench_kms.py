"""GetAppKey end to end on the devnet (anvil + DstackKms + an app, mock Intel PKI, the KMS served by uvicorn):
p50/p99 latency and requests/s at 1, 8 and 32 concurrent callers, beside the floor measured in the same run:
one quote verify + one eth_call of DstackKms.isAppAllowed + the key derivation, in-process, no HTTP.
Target: p50 <= 1.5x the floor at 1 caller (at 8 and 32 callers latency also holds the queueing).

Quotes are made (and request bodies encoded) before anything is timed. Every answer must be HTTP 200,
and a few per level are opened with the requester's X25519 key and checked against the derived keys.
The callers are one light load generator in a process of its own (`generate_load`: one asyncio loop, one
keep-alive connection per caller, requests encoded ahead); the CPU it spends per request is reported.

Then `warden kms serve --workers 2` against `--workers 1`, both as processes on the same keys and chain, side by
side, the loads taking turns: requests/s at 32 callers (target: 2 workers >= 1.7x one worker's), over 32
keep-alive connections and with a new connection per request (what booting CVMs do: the kernel hands each new
connection to whichever worker accepts first, while a keep-alive connection stays with the worker that took it).
On a 2-core machine the load generator and anvil share those cores, so the report also gives the CPU each
process spent per request.

Run: .venv/bin/python -m bench.bench_kms
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.http_server import serve
from tests.support.processes import answers_health, children_of, free_port, wait_until

from bench.common import BenchResult
from warden.chain.app import BootCheck
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, signer_from_key
from warden.chain.tx import TxRequest, execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil, start_anvil
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

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = int(os.environ.get("BENCH_KMS_REQUESTS", "400"))  # distinct (key, quote) pairs, reused round-robin
LEVELS = ((1, 150), (8, 300), (32, 300))  # (concurrent callers, timed requests)
ROUNDS = 3  # the 1-caller level runs in this many parts, each followed by a floor run (the machine's load drifts)
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
    client_cpu: float  # seconds of CPU the load generator spent while timing

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


def load(url: str, prepared: list[Prepared], callers: int, count: int, *, fresh: bool = False) -> Level:
    """`count` GetAppKey requests from `callers` keep-alive connections (`fresh`: a new connection per request),
    driven by a light load generator in a process of its own (see `generate_load`), so the client never competes
    with the server for its GIL."""
    spec = {"url": url, "bodies": [p.body.decode() for p in prepared], "callers": callers, "count": count,
            "checked": CHECKED, "fresh": fresh}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_kms", "--load-generator"], input=json.dumps(spec), capture_output=True,
        text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    failed = result["failed"]
    assert not failed, f"{len(failed)} of {count} requests failed at {callers} callers, e.g. {failed[0]}"
    assert len(result["latencies"]) == count
    answers = [(index, body.encode()) for index, body in result["answers"]]
    return Level(callers, result["latencies"], result["wall"], answers, result["cpu"])


def generate_load(spec: dict[str, Any]) -> dict[str, Any]:
    """The load generator: one asyncio loop, one keep-alive HTTP/1.1 connection per caller, every request
    encoded before the clock starts, answers read by Content-Length. Each connection first sends one request
    (untimed: it opens the connection and warms the server); then all callers start together, each sending the
    next of the `count` requests as soon as its last is answered (no caller waits idle while work is left, so
    a connection that landed on a busier server process does not hold the run up). With `fresh`,
    each timed request opens its own connection instead (as a booting CVM does), and the time includes it."""
    host, _, port = spec["url"].removeprefix("http://").partition(":")
    head = f"POST /prpc/KMS.GetAppKey HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
    wires = [f"{head}content-length: {len(b)}\r\n\r\n{b}".encode() for b in spec["bodies"]]
    callers, count = spec["callers"], spec["count"]

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: bytes) -> tuple[int, bytes]:
        writer.write(wire)
        header = await reader.readuntil(b"\r\n\r\n")
        length = None
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"answer without content-length: {header[:200]!r}")
        return int(header[9:12]), await reader.readexactly(length)

    async def main() -> dict[str, Any]:
        connections = []
        for k in range(callers):  # one after the other, as the callers of the original httpx bench did
            reader, writer = await asyncio.open_connection(host, int(port))
            status, body = await exchange(reader, writer, wires[-1 - k % len(wires)])
            assert status == 200, body[:200]
            connections.append((reader, writer))
        done: list[tuple[int, float, int, bytes]] = []

        taken = itertools.count()  # each caller takes the next request when its last is answered (as wrk does)

        async def caller(k: int) -> None:
            reader, writer = connections[k]
            while (n := next(taken)) < count:
                index = n % len(wires)
                if spec["fresh"]:
                    writer.close()
                began = time.perf_counter()
                if spec["fresh"]:
                    reader, writer = await asyncio.open_connection(host, int(port))
                status, body = await exchange(reader, writer, wires[index])
                done.append((index, time.perf_counter() - began, status, body))
            connections[k] = reader, writer

        began, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        for _, writer in connections:
            writer.close()
        sampled = done[:: max(1, count // spec["checked"])][: spec["checked"]]  # spread over the callers and the run
        return {
            "latencies": [r[1] for r in done],
            "wall": wall,
            "cpu": cpu,
            "failed": [(status, body[:200].decode(errors="replace")) for _, _, status, body in done if status != 200],
            "answers": [(r[0], r[3].decode()) for r in sampled],
        }

    return asyncio.run(main())


def joined(parts: list[Level]) -> Level:
    """Several runs at one level as one."""
    latencies = [t for part in parts for t in part.latencies]
    answers = [a for part in parts for a in part.answers][:CHECKED]
    wall, cpu = sum(part.wall for part in parts), sum(part.client_cpu for part in parts)
    return Level(parts[0].callers, latencies, wall, answers, cpu)


def check_answers(level: Level, prepared: list[Prepared], keys: RootKeys) -> None:
    """The answers really carry this caller's keys: they open with its private key and match the derivation."""
    for index, body in level.answers:
        p = prepared[index]
        released = json.loads(open_sealed(p.private_key, bytes.fromhex(json.loads(body)["sealed_keys"])))
        expected = derive_app_keys(keys, p.app_id, p.instance_id)
        assert released["disk_crypt_key"] == expected.disk_crypt_key.hex()
        assert released["k256_key"] == expected.k256_key.hex()


WARDEN = str(ROOT / ".venv" / "bin" / "warden")
WORKERS_LEVEL = (32, 600)  # in ROUNDS parts
LATENCY_TARGET = 1.5  # p50 at 1 caller, times the floor
WORKERS_TARGET = 1.7  # requests/s of 2 workers, times 1 worker's


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


@dataclass(frozen=True)
class WorkersRun:
    level: Level
    worker_cpu: list[float]  # seconds of CPU each server process spent while timing (the workers, not the parent)
    anvil_cpu: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has spent, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_levels(
    kms: KmsRegistry, anvil: Anvil, files: Path, prepared: list[Prepared]
) -> dict[tuple[int, bool], WorkersRun]:
    """The same 32-caller load against one worker and against two, over keep-alive connections and with a fresh
    connection per request, with the CPU each process spent. Both servers run side by side and the loads take
    turns in short parts (ROUNDS of them), so a change in the machine's load hits both alike."""
    servers: dict[int, tuple[subprocess.Popen[str], str]] = {}
    parts: dict[tuple[int, bool], list[WorkersRun]] = {}
    try:
        for workers in (1, 2):
            servers[workers] = serve_process(kms, anvil.url, files, workers)
            load(servers[workers][1], prepared, 4, 40)  # every worker past its first requests before timing
        callers, count = WORKERS_LEVEL
        for _ in range(ROUNDS):
            for fresh in (False, True):
                for workers, (process, url) in servers.items():
                    pids = children_of(process.pid) if workers > 1 else [process.pid]  # not the supervisor
                    before, anvil_before = [cpu_seconds(pid) for pid in pids], cpu_seconds(anvil.pid)
                    level = load(url, prepared, callers, count // ROUNDS, fresh=fresh)
                    spent = [cpu_seconds(pid) - began for pid, began in zip(pids, before, strict=True)]
                    run = WorkersRun(level, spent, cpu_seconds(anvil.pid) - anvil_before)
                    parts.setdefault((workers, fresh), []).append(run)
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGINT)
        for process, _ in servers.values():
            process.wait(timeout=30)
    return {
        key: WorkersRun(
            joined([run.level for run in runs]),
            [sum(spent) for spent in zip(*(run.worker_cpu for run in runs), strict=True)],
            sum(run.anvil_cpu for run in runs),
        )
        for key, runs in parts.items()
    }


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
                    (callers, count), *rest = LEVELS
                    parts = []
                    for _ in range(ROUNDS):  # interleaved with the floor, so drift hits both alike
                        parts.append(load(url, prepared, callers, count // ROUNDS))
                        floors += floor(service, kms, prepared[: len(prepared) // ROUNDS])
                    levels = [joined(parts)] + [load(url, prepared, callers, count) for callers, count in rest]
                floors += floor(service, kms, prepared)  # again after the load
            for level in levels:
                check_answers(level, prepared, service.keys)
            files = Path(tmp)
            (files / "root.der").write_bytes(pki.root_ca_der)
            (files / "collateral.json").write_text(collateral_json(pki))
            per_workers = workers_levels(kms, node, files, prepared)
            served_keys, _ = load_or_generate_root_keys(files / "keys")
            for workers_run in per_workers.values():
                check_answers(workers_run.level, prepared, served_keys)
            chain.close()
    finally:
        node.stop()
    floor_ms = statistics.median(floors) * 1000
    cores = os.cpu_count() or 1
    results = []
    for level in levels:
        p50, p99 = statistics.median(level.latencies) * 1000, level.percentile(0.99) * 1000
        rate = len(level.latencies) / level.wall
        client = level.client_cpu * 1000 / len(level.latencies)
        if level.callers == 1:
            verdict = "met" if p50 <= LATENCY_TARGET * floor_ms else "NOT met"
            tail = f"; target p50 <= {LATENCY_TARGET}x the floor: {verdict}"
        else:
            tail = f"; at {level.callers} callers on {cores} cores latency includes queueing in one server process"
        results.append(
            BenchResult(
                name=f"KMS GetAppKey p50, {level.callers} caller{'s' if level.callers > 1 else ''}",
                ours=p50,
                baseline=floor_ms,
                baseline_name="floor: verify + eth_call + derive",
                unit="ms",
                kind="overhead",
                note=f"p99 {p99:.2f} ms, {rate:.0f} req/s over {len(level.latencies)} requests, load generator "
                f"{client:.2f} ms CPU/request{tail}",
            )
        )
    rates = {key: len(r.level.latencies) / r.level.wall for key, r in per_workers.items()}

    def cpu(key: tuple[int, bool]) -> str:
        run, count = per_workers[key], len(per_workers[key].level.latencies)
        each = "+".join(f"{spent * 1000 / count:.2f}" for spent in run.worker_cpu if spent)  # not an idle helper
        return (f"server {each}, anvil {run.anvil_cpu * 1000 / count:.2f}, load generator "
                f"{run.level.client_cpu * 1000 / count:.2f}")  # fmt: skip

    for fresh in (False, True):
        one, two = rates[1, fresh], rates[2, fresh]
        both = per_workers[2, fresh]  # what the cores can give at most: all of them, at 2 workers' CPU per request
        spent = (sum(both.worker_cpu) + both.anvil_cpu + both.level.client_cpu) / len(both.level.latencies)
        ceiling = cores / spent
        how = "a new connection per request (as each booting CVM makes)" if fresh else "32 keep-alive connections"
        results.append(
            BenchResult(
                name=f"KMS GetAppKey throughput at {WORKERS_LEVEL[0]} callers, kms serve --workers 2, "
                + ("fresh connections" if fresh else "keep-alive"),
                ours=1000 / two,
                baseline=1000 / one,
                baseline_name="--workers 1",
                unit="ms/request",
                note=f"{how}; {two:.0f} vs {one:.0f} req/s on {cores} cores shared with anvil and the load generator; "
                f"CPU ms per request with 1 worker: {cpu((1, fresh))}; with 2: {cpu((2, fresh))}; target >= "
                f"{WORKERS_TARGET}x: {'met' if two >= WORKERS_TARGET * one else 'NOT met'}; {cores} cores busy only "
                f"with these would give at most {ceiling:.0f} req/s at that CPU per request ({ceiling / one:.2f}x)",
            )
        )
    return results


if __name__ == "__main__":
    if sys.argv[1:] == ["--load-generator"]:
        json.dump(generate_load(json.load(sys.stdin)), sys.stdout)
        sys.exit(0)
    began, load_before = time.monotonic(), os.getloadavg()[0]
    for result in run():
        print(result.line())
    print(f"({time.monotonic() - began:.1f} s in all, setup included; the 1-minute load average was {load_before:.2f} "
          f"on {os.cpu_count()} cores before the run: other work on the machine shares the cores too)")  # fmt: skip
