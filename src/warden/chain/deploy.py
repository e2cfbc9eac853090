"""Deploy the contracts: implementations, then UUPS proxies initialised in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from warden.chain.artifacts import Artifact, load_artifact
from warden.chain.connection import Chain
from warden.chain.signer import Signer
from warden.chain.tx import TxOutcome, TxRequest, execute, require_success


@dataclass(frozen=True)
class KmsDeployment:
    kms: str
    kms_implementation: str
    app_implementation: str
    chain_id: int


def creation(artifact: Artifact, *args: object) -> TxRequest:
    return TxRequest(
        None, artifact.abi.encode_deploy(artifact.bytecode, *args), f"deploy {artifact.name}", artifact.abi
    )


def deployed_address(outcome: TxOutcome) -> str:
    require_success(outcome)
    assert outcome.contract_address is not None  # a mined creation always has one
    return outcome.contract_address


def deploy_implementations(
    chain: Chain, signer: Signer, artifacts: Sequence[Artifact], timeout: float = 120.0
) -> list[str]:
    """Deploy several implementation contracts in one pipelined batch."""
    outcomes = execute(chain, signer, [creation(a) for a in artifacts], timeout=timeout)
    return [deployed_address(o) for o in outcomes]


def proxy_creation(implementation: Artifact, impl_address: str, init: bytes) -> TxRequest:
    """An ERC1967Proxy whose constructor calls `init` on the implementation (so nobody can front-run it)."""
    request = creation(load_artifact("ERC1967Proxy"), impl_address, init)
    request.label = f"deploy {implementation.name} proxy"
    request.abi = implementation.abi  # a failing initializer reverts with the implementation's errors
    return request


def deploy_proxy(
    chain: Chain,
    signer: Signer,
    implementation: Artifact,
    impl_address: str,
    init: bytes,
    timeout: float = 120.0,
) -> str:
    (outcome,) = execute(chain, signer, [proxy_creation(implementation, impl_address, init)], timeout=timeout)
    return deployed_address(outcome)


def deploy_kms(chain: Chain, signer: Signer, owner: str | None = None, timeout: float = 120.0) -> KmsDeployment:
    """DstackApp implementation + DstackKms implementation, then the DstackKms proxy pointing at both."""
    app_artifact, kms_artifact = load_artifact("DstackApp"), load_artifact("DstackKms")
    app_impl, kms_impl = deploy_implementations(chain, signer, [app_artifact, kms_artifact], timeout)
    init = kms_artifact.abi.encode_call("initialize", owner or signer.address, app_impl)
    kms = deploy_proxy(chain, signer, kms_artifact, kms_impl, init, timeout)
    return KmsDeployment(kms=kms, kms_implementation=kms_impl, app_implementation=app_impl, chain_id=chain.chain_id)
