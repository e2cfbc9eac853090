"""50 devices added on anvil with 1 s blocks, three ways, measured in the same run on the same node:

1. warden: the way `warden allow-devices add APP D1…D50 --wait` does it (`warden.changes.flow.send`:
   read state, simulate, send all with consecutive nonces, wait once, re-read);
2. a well-done user script: sign each addDevice with nonce + i and send it, then wait for all receipts
   (written with warden.chain.signer / warden.chain.tx, as a web3.py script would; no state read,
   one gas estimate reused, no re-read);
3. send-and-wait for each.

Each run starts right after a new block, so none gets a head start in the 1 s block cycle.
Targets: >= 20x faster than send-and-wait each, all mined within 3 blocks, the whole add <= 5 s, and
within ~1.2x of the send-all-wait-once script (the printed ratio is "times faster": >= 0.83x).

Run: .venv/bin/python -m bench.bench_pipeline
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import to_checksum_address

from bench.common import BenchResult
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, signer_from_key
from warden.chain.tx import GAS_HEADROOM, TxOutcome, execute, require_success, simulate, wait_all
from warden.changes.asked import device_changes
from warden.changes.flow import Delivery, send
from warden.devnet.anvil import DEV_PRIVATE_KEY, start_anvil

COUNT = int(os.environ.get("BENCH_PIPELINE_COUNT", "50"))
TARGET_SPEEDUP = 20.0
TARGET_BLOCKS = 3
TARGET_SECONDS = 5.0
SCRIPT = "script: send all with consecutive nonces, wait once"
EACH = "send-and-wait each"
TARGET_VS_SCRIPT = 1.2  # warden may take at most this many times the user script's time


def device(i: int, batch: int) -> bytes:
    return bytes([batch]) + i.to_bytes(31, "big")


def after_next_block(chain: Chain) -> None:
    """Return just after the node mines a new block, so every run starts at the same point of the cycle."""
    first = chain.block_number()
    while chain.block_number() == first:
        time.sleep(0.01)


def blocks_spanned(chain: Chain, tx_hashes: Sequence[str | None]) -> int:
    numbers = []
    for tx_hash in tx_hashes:
        receipt = chain.receipt(tx_hash) if tx_hash else None
        assert receipt is not None, f"no receipt for {tx_hash}"
        numbers.append(int(receipt["blockNumber"], 16))
    return max(numbers) - min(numbers) + 1


def warden_way(chain: Chain, signer: Signer, app: AppAuth) -> tuple[float, int]:
    began = time.monotonic()
    plan = device_changes(app, [(device(i, 1), None) for i in range(COUNT)], add=True)
    report = send(plan, signer, Delivery("send", wait=True, timeout=60))
    took = time.monotonic() - began
    results = report.results
    assert len(results) == COUNT and all(r.status == "added" for r in results), [r.status for r in results]
    return took, blocks_spanned(chain, [r.tx for r in results])


def send_all_wait_once(chain: Chain, signer: Signer, app: AppAuth) -> tuple[float, int]:
    """The user script: one gas estimate, sign with nonce + i and send each, then wait for all receipts."""
    began = time.monotonic()
    requests = [app.add_device(device(i, 2)) for i in range(COUNT)]
    gas = int(simulate(chain, signer, requests[:1])[0] * GAS_HEADROOM) + 10_000
    fees = chain.fee_params().tx_fields()
    nonce = chain.nonce(signer.address, "pending")
    outcomes = []
    for i, req in enumerate(requests):
        assert req.to is not None
        tx = {"chainId": chain.chain_id, "nonce": nonce + i, "gas": gas, "to": to_checksum_address(req.to)}
        raw = signer.sign_transaction({**tx, "data": req.data, "value": 0, **fees})
        tx_hash = chain.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        outcomes.append(TxOutcome(req, "pending", tx_hash=str(tx_hash), nonce=nonce + i))
    wait_all(chain, outcomes, timeout=60)
    took = time.monotonic() - began
    assert all(o.status == "mined" for o in outcomes), [o.status for o in outcomes]
    return took, blocks_spanned(chain, [o.tx_hash for o in outcomes])


def send_and_wait_each(chain: Chain, signer: Signer, app: AppAuth) -> tuple[float, int]:
    began = time.monotonic()
    hashes = []
    for i in range(COUNT):
        (outcome,) = execute(chain, signer, [app.add_device(device(i, 3))], timeout=60)
        hashes.append(require_success(outcome).tx_hash)
    took = time.monotonic() - began
    return took, blocks_spanned(chain, hashes)


@dataclass(frozen=True)
class Row:
    way: str
    seconds: float
    blocks: int  # blocks spanned by the transactions, first to last


def measure() -> list[Row]:
    """The three ways, one after another on the same anvil; warden's row first."""
    node = start_anvil(block_time=1)
    try:
        chain = Chain.connect(node.url)
        signer = signer_from_key(DEV_PRIVATE_KEY, "bench")
        kms = KmsRegistry(chain, deploy_kms(chain, signer).kms)
        (deployed,) = execute(chain, signer, [kms.deploy_app(signer.address)])
        receipt = require_success(deployed).receipt
        assert receipt is not None
        app = AppAuth(chain, kms.app_from_receipt(receipt))

        rows = []
        for way, how in [
            ("warden (changes.flow)", warden_way),
            (SCRIPT, send_all_wait_once),
            (EACH, send_and_wait_each),
        ]:
            after_next_block(chain)
            rows.append(Row(way, *how(chain, signer, app)))

        checks = [("allowedDeviceIds", (device(i, b),)) for i in range(COUNT) for b in (1, 2, 3)]
        assert all(app.call_many(checks)), "not every device ended up allowed"
        chain.close()
    finally:
        node.stop()
    return rows


def results(rows: Sequence[Row]) -> list[BenchResult]:
    ours, script, each = rows
    name = f"allow-devices add {COUNT} --wait, 1 s blocks"
    vs_script = ours.seconds / script.seconds
    speedup = each.seconds / ours.seconds
    all_met = speedup >= TARGET_SPEEDUP and ours.blocks <= TARGET_BLOCKS and ours.seconds <= TARGET_SECONDS
    return [
        BenchResult(
            name=name,
            ours=ours.seconds,
            baseline=script.seconds,
            baseline_name=script.way,
            note=(
                f"warden takes {vs_script:.2f}x the script's time, target <= {TARGET_VS_SCRIPT:g}x: "
                + ("met" if vs_script <= TARGET_VS_SCRIPT else "MISSED")
            ),
        ),
        BenchResult(
            name=name,
            ours=ours.seconds,
            baseline=each.seconds,
            baseline_name=each.way,
            note=(
                f"warden mined within {ours.blocks} block(s); targets: >= {TARGET_SPEEDUP:g}x, "
                f"<= {TARGET_BLOCKS} blocks, <= {TARGET_SECONDS:g} s: " + ("met" if all_met else "MISSED")
            ),
        ),
    ]


def run() -> list[BenchResult]:
    return results(measure())


if __name__ == "__main__":
    measured = measure()
    width = max(len(r.way) for r in measured)
    print(f"{'way':<{width}}  {'seconds':>8}  {'blocks':>6}")
    for row in measured:
        print(f"{row.way:<{width}}  {row.seconds:>8.2f}  {row.blocks:>6}")
    for result in results(measured):
        print(result.line())
