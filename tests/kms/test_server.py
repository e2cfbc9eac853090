"""The KMS over real HTTP: each failure answers dstack's `{"error": …}` with the status `warden.errors` gives
it (400 malformed, 403 the chain said no, 404 unknown method, 503 the chain could not be read)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.kms.conftest import ALLOWED_OS_IMAGE
from tests.support.chain import deploy_app
from tests.support.http_server import serve
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry, LazyKmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.keys.app_keys import RootKeys
from warden.keys.sealed_box import new_key_pair, report_data_for
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.authorization import Authorizer
from warden.kms.server import create_kms_app
from warden.kms.service import APP_KEY_PURPOSE, KmsService
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

COMPOSE = hashlib.sha256(b'{"name":"status-demo","runner":"docker-compose"}').digest()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path_factory.mktemp("pki"))


@contextmanager
def served_kms(registry: KmsRegistry | LazyKmsRegistry, pki: MockIntelPki) -> Iterator[str]:
    """A KMS with fresh root keys that asks `registry`, on 127.0.0.1; its URL."""
    policy = AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)
    with (
        Authorizer(registry, timeout=3.0) as authorizer,
        serve(create_kms_app(KmsService(RootKeys.generate(), authorizer, policy))) as url,
    ):
        yield url


@pytest.fixture(scope="module")
def kms_url(auth_kms: KmsRegistry, pki: MockIntelPki) -> Iterator[str]:
    with served_kms(auth_kms, pki) as url:
        yield url


def call(url: str, method: str, body: bytes | dict[str, object]) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(f"{url}/prpc/{method}", content=body, timeout=30)
    return httpx.post(f"{url}/prpc/{method}", json=body, timeout=30)


@pytest.mark.parametrize(
    ("method", "body", "status", "error"),
    [
        ("KMS.GetMeta", {}, 200, None),
        ("KMS.Nope", {}, 404, "unknown method KMS.Nope"),
        ("KMS.GetMeta", b"[1, 2]", 400, "request body must be a JSON object"),
        ("KMS.GetMeta", b"{", 400, "request body is "),
        ("KMS.GetAppEnvEncryptPubKey", {"app_id": "12"}, 400, "app_id must be 20 bytes"),
        ("KMS.GetAppKey", {"api_version": 2}, 400, "Unsupported API version: 2"),
        ("KMS.GetAppKey", {"requester_key": "00"}, 400, "request has no `attestation` object"),
        ("KMS.GetKmsAttestation", {}, 503, "this KMS does not run in a CVM"),
    ],
)
def test_each_failure_answers_its_status(kms_url: str, method: str, body: bytes | dict[str, object], status: int,
                                         error: str | None) -> None:  # fmt: skip
    answer = call(kms_url, method, body)
    assert answer.status_code == status, answer.text
    if error is not None:
        assert list(answer.json()) == ["error"] and answer.json()["error"].startswith(error), answer.text


def test_a_boot_the_chain_refuses_is_403_with_the_contracts_reason(
    tmp_path: Path, chain: Chain, owner: Signer, auth_kms: KmsRegistry, pki: MockIntelPki, kms_url: str
) -> None:
    node = SimNode.load_or_create(tmp_path / "node", "prod5", "devnet")
    app = deploy_app(chain, owner, auth_kms, device_id=bytes(32), compose_hash=COMPOSE)  # not this node's device
    cvm = SimCvm(node, pki, app_id=bytes.fromhex(app.address[2:]), compose_hash=COMPOSE,
                 instance_id=(1).to_bytes(20, "big"), os_image_hash=ALLOWED_OS_IMAGE,
                 key_provider=b'{"name":"kms","id":"devnet"}')  # fmt: skip
    _private, public = new_key_pair()
    attestation = cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, public))
    body = {"api_version": 1, "attestation": attestation, "requester_key": public.hex()}
    before = refusals(kms_url)
    answer = call(kms_url, "KMS.GetAppKey", body)
    assert (answer.status_code, answer.json()) == (403, {"error": "Boot denied: Device not allowed"})
    assert refusals(kms_url) == before + 1  # GET /metrics counts it by the contract's reason


def refusals(url: str) -> float:
    """warden_kms_decisions_total for GetAppKey refused with "Device not allowed", from the KMS's /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    wanted = 'warden_kms_decisions_total{allowed="false",reason="Device not allowed",service="kms"} '
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted))


def test_a_chain_that_cannot_be_read_is_503(pki: MockIntelPki, auth_kms: KmsRegistry, dead_url: str) -> None:
    rpc = RpcClient(dead_url, timeout=2.0, fail_fast=True, retry_timeouts=False)
    try:
        with served_kms(LazyKmsRegistry(rpc, auth_kms.address, chain_id=31337), pki) as url:
            answer = call(url, "KMS.GetMeta", {})
            assert answer.status_code == 503 and answer.json()["error"].startswith("authorization backend unavailable")
    finally:
        rpc.close()
