"""Per quote: what a KMS does with an attestation (verify + event-log replay + BootInfo) compared with
dcap-qvl's verification alone, the floor, measured in the same run on devnet quotes.
Target: <= 1.5x the floor.

Run: .venv/bin/python -m bench.bench_attestation
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import dcap_qvl

from bench.common import BenchResult
from warden.identity.attestation import read_attestation
from warden.identity.bootinfo import build_boot_info, os_image_hash_of_vm_config
from warden.identity.quote import parse_collateral, verify_quote
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

QUOTES = 300
ROUNDS = 5


def run() -> list[BenchResult]:
    with tempfile.TemporaryDirectory() as tmp:
        pki = MockIntelPki.load_or_create(Path(tmp) / "pki")
        nodes = [SimNode.load_or_create(Path(tmp) / f"node{i}", f"node{i}", "devnet") for i in range(3)]
        reports = []
        for i in range(QUOTES):
            cvm = SimCvm(
                nodes[i % 3], pki, app_id=i.to_bytes(20, "big"), compose_hash=bytes([i % 256]) * 32,
                instance_id=b"\x01" * 20, os_image_hash=b"\x02" * 32, key_provider=b'{"name":"kms","id":""}',
            )  # fmt: skip
            reports.append(json.dumps(cvm.get_quote_response(i.to_bytes(32, "big"))).encode())
        collateral = parse_collateral(collateral_json(pki))
        root, now = pki.root_ca_der, int(time.time())
        raw_quotes = [read_attestation(r).quote for r in reports]

        def floor() -> float:
            began = time.perf_counter()
            for raw in raw_quotes:
                dcap_qvl.verify_with_root_ca(raw, collateral, root, now)
            return time.perf_counter() - began

        def full() -> float:
            began = time.perf_counter()
            for report in reports:
                attestation = read_attestation(report)
                verified = verify_quote(attestation.quote, collateral, now, root)
                assert attestation.events is not None
                build_boot_info(
                    verified,
                    attestation.events,
                    vm_config_os_image_hash=os_image_hash_of_vm_config(attestation.vm_config),
                )
            return time.perf_counter() - began

        # interleave and keep the best round of each, so background noise hits both alike
        floors, fulls = [], []
        for _ in range(ROUNDS):
            floors.append(floor())
            fulls.append(full())
    best_floor, best_full = min(floors) / QUOTES, min(fulls) / QUOTES
    return [
        BenchResult(
            name="attestation: verify + replay + BootInfo",
            ours=best_full * 1000,
            baseline=best_floor * 1000,
            baseline_name="dcap-qvl verify alone (floor)",
            unit="ms",
            kind="overhead",
            note=f"per quote, best of {ROUNDS} rounds of {QUOTES} devnet quotes; target <= 1.5x the floor",
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
