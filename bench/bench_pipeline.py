"""50 addDevice writes on anvil with 1 s blocks: pipelined (consecutive nonces, send all, wait once)
versus send-and-wait for each. Target: >= 20x faster, all 50 mined within 3 blocks.

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
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil

COUNT = int(os.environ.get("BENCH_PIPELINE_COUNT", "50"))


def device(i: int, batch: int) -> bytes:
    return bytes([batch]) + i.to_bytes(31, "big")


def run() -> BenchResult:
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
        outcomes = execute(chain, signer, [app.add_device(device(i, 1)) for i in range(COUNT)], timeout=60)
        pipelined = time.monotonic() - began
        for outcome in outcomes:
            require_success(outcome)
        blocks = max(o.block_number or 0 for o in outcomes) - start_block

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
    return BenchResult(
        name=f"{COUNT} addDevice at 1 s blocks",
        ours=pipelined,
        baseline=sequential,
        baseline_name="send-and-wait each",
        note=f"pipelined batch mined within {blocks} block(s) of sending; target >= 20x and <= 3 blocks",
    )


if __name__ == "__main__":
    print(run().line())
