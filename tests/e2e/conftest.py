from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.devnet_runbook import DEMO_CVMS, Devnet
from tests.e2e.world import COMPOSE_PLATFORM_A, COMPOSE_PLATFORM_B, OS_IMAGE, World
from tests.support.chain import deploy_app, send
from tests.support.cli import WARDEN_ENV
from tests.support.http_server import serve
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.keys.app_keys import RootKeys
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.authorization import Authorizer
from warden.kms.server import create_kms_app
from warden.kms.service import KmsService, KmsSettings
from warden.tee.collateral import collateral_json
from warden.tee.pki import MockIntelPki


def kms_service(
    kms: KmsRegistry, pki: MockIntelPki, keys: RootKeys, csr_versions: tuple[int, ...] = (1, 2)
) -> KmsService:
    policy = AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)
    return KmsService(keys, Authorizer(kms), policy, KmsSettings(csr_api_versions=csr_versions))


@pytest.fixture
def world(chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path) -> Iterator[World]:
    """The field report's setup: app shared-key-demo allows prod5, prod6 and hosted, both platforms' hashes."""
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    send(chain, owner, kms.add_os_image(OS_IMAGE))
    service = kms_service(kms, pki, RootKeys.generate())
    with serve(create_kms_app(service)) as url:
        world = World(chain, owner, kms, None, pki, service, url, tmp_path)  # type: ignore[arg-type]
        world.app = deploy_app(chain, owner, kms, device_id=world.node("prod5").device_id,
                               compose_hash=COMPOSE_PLATFORM_A)  # fmt: skip
        send(chain, owner, world.app.add_compose_hash(COMPOSE_PLATFORM_B))
        world.allow_device("prod6")
        world.allow_device("hosted")
        yield world


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """A whole devnet for the test module (started detached on free ports, stopped after), every demo CVM booted."""
    with pytest.MonkeyPatch.context() as patch:
        for name in WARDEN_ENV:  # nothing of the developer's shell leaks into the in-process runs
            patch.delenv(name, raising=False)
        net = Devnet(tmp_path_factory.mktemp("devnet") / "warden-home")
        try:
            started = net.up()
            for cvm in DEMO_CVMS:
                assert f"{cvm} on {DEMO_CVMS[cvm][0]}: booted" in started.stderr
            yield net
        finally:
            stopped = net.down()
            assert stopped.returncode == 0, stopped.stderr
