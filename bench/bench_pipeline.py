"""50 devices added on anvil with 1 s blocks, the way `warden allow-devices add APP D1…D50 --wait` does
it (read state, send all with consecutive nonces, wait once, re-read) versus send-and-wait for each.
Targets: >= 20x faster, all mined within 3 blocks, the whole add <= 5 s.

Run: .venv/bin/python -m bench.bench_pipeline
"""

from __future__ import annotations

import os
import time

from bench.common import BenchResult
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.changes.asked import device_changes
from warden.changes.flow import Delivery, send
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil

COUNT = int(os.environ.get("BENCH_PIPELINE_COUNT", "50"))


def device(i: int, batch: int) -> bytes:
    return bytes([batch]) + i.to_bytes(31, "big")


def run() -> list[BenchResult]:
    node = start_anvil(block_time=1)
    try:
        chain = Chain.connect(node.url)
        signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
        kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
        (deployed,) = execute(chain, signer, [kms.deploy_app(signer.address)])
        receipt = require_success(deployed).receipt
        assert receipt is not None
        app = AppAuth(chain, kms.app_from_receipt(receipt))

        start_block = chain.block_number()
        began = time.monotonic()
        plan = device_changes(app, [(device(i, 1), None) for i in range(COUNT)], add=True)
        report = send(plan, signer, Delivery("send", wait=True, timeout=60))
        pipelined = time.monotonic() - began
        results = report.results
        assert len(results) == COUNT and all(r.status == "added" for r in results), [r.status for r in results]
        blocks = chain.block_number() - start_block

        began = time.monotonic()
        for i in range(COUNT):
            (outcome,) = execute(chain, signer, [app.add_device(device(i, 2))], timeout=60)
            require_success(outcome)
        sequential = time.monotonic() - began
        allowed = all(app.call_many([("allowedDeviceIds", (device(i, b),)) for i in range(COUNT) for b in (1, 2)]))
        assert allowed, "not every device ended up allowed"
        chain.close()
    finally:
        node.stop()
    return [
        BenchResult(
            name=f"allow-devices add {COUNT} --wait, 1 s blocks",
            ours=pipelined,
            baseline=sequential,
            baseline_name="send-and-wait each",
            note=f"all mined within {blocks} block(s); targets: >= 20x, <= 3 blocks, <= 5 s",
        )
    ]


if __name__ == "__main__":
    for result in run():
        print(result.line())
