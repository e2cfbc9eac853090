"""Helpers shared by tests that talk to anvil."""

from __future__ import annotations

from pathlib import Path

from warden.chain.app import AppAuth
from warden.chain.artifacts import Artifact, load_artifact_file
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, TxRequest, execute, require_success

# anvil's public test keys #1 and #2 (#0 is warden.devnet.anvil.DEV_PRIVATE_KEY)
STRANGER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
THIRD_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"

TEST_ARTIFACTS = Path(__file__).resolve().parent.parent / "contracts" / "artifacts"


def test_artifact(name: str) -> Artifact:
    """Contracts compiled only for tests (upgrade targets): DstackAppNext, DstackKmsNext."""
    return load_artifact_file(TEST_ARTIFACTS / f"{name}.json")


def send(chain: Chain, signer: Signer, request: TxRequest) -> TxOutcome:
    """Send one write and wait for it; fails the test unless it mined successfully."""
    (outcome,) = execute(chain, signer, [request], timeout=30)
    return require_success(outcome)


def deploy_app(
    chain: Chain,
    signer: Signer,
    kms: KmsRegistry,
    *,
    owner: str | None = None,
    device_id: bytes = bytes(32),
    compose_hash: bytes = bytes(32),
    allow_any_device: bool = False,
    require_tcb_up_to_date: bool = False,
    disable_upgrades: bool = False,
) -> AppAuth:
    outcome = send(
        chain,
        signer,
        kms.deploy_app(
            owner or signer.address,
            device_id=device_id,
            compose_hash=compose_hash,
            allow_any_device=allow_any_device,
            require_tcb_up_to_date=require_tcb_up_to_date,
            disable_upgrades=disable_upgrades,
        ),
    )
    assert outcome.receipt is not None
    return AppAuth.open(chain, kms.app_from_receipt(outcome.receipt))
