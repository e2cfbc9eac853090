"""The webhook and the KMS when their chain's RPC refuses connections: they start, deny every request with
the reason at once (no connection attempt per request), say so on `GET /`, and recover by themselves when a
node listens on that port again (a FlakyProxy in front of anvil, bound to the port that was dead)."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kms.conftest import ALLOWED_OS_IMAGE, GATEWAY_APP_ID, SECRET, service_log
from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, warden
from tests.support.flaky_proxy import FlakyProxy
from tests.support.http_server import serve
from tests.support.processes import auth_serve, port_of, wait_until
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import KmsDeployment
from warden.chain.kms import KmsRegistry, LazyKmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil
from warden.identity.bootinfo import BootInfo
from warden.keys.app_keys import RootKeys
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.authorization import BACKEND_UNAVAILABLE, Authorizer
from warden.kms.client import KmsClient, KmsRefused
from warden.kms.server import create_kms_app
from warden.kms.service import KmsService
from warden.kms.webhook import create_webhook_app
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.guest import Guest
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

UNAVAILABLE = {"isAllowed": False, "reason": BACKEND_UNAVAILABLE, "gatewayAppId": ""}
ALLOWED = {"isAllowed": True, "reason": "", "gatewayAppId": GATEWAY_APP_ID}
HEALTH_ERROR = {"status": "error", "message": BACKEND_UNAVAILABLE}
COMPOSE = hashlib.sha256(b'{"name":"outage-demo","runner":"docker-compose"}').digest()
DEVICE = hashlib.sha256(b"outage-device").digest()


def service_rpc(dead_url: str) -> RpcClient:
    """The client `warden auth serve` / `kms serve` build: fail fast on refusals, no retry past the deadline."""
    return RpcClient(f"{dead_url}/v2/{SECRET}?apikey={SECRET}", timeout=2.0, fail_fast=True, retry_timeouts=False)


def app_boot(app: AppAuth) -> dict[str, Any]:
    """The BootInfo a dstack KMS posts for a boot `app` allows."""
    boot = BootInfo(
        tee_variant="dstack-tdx",
        mr_aggregated=bytes(32),
        os_image_hash=ALLOWED_OS_IMAGE,
        mr_system=bytes(32),
        app_id=bytes.fromhex(app.address[2:]),
        compose_hash=COMPOSE,
        instance_id=bytes(20),
        device_id=DEVICE,
        key_provider_info=b"",
        tcb_status="UpToDate",
        advisory_ids=(),
    )
    return boot.webhook_json()


@pytest.fixture(scope="module")
def allowed_app(chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, auth_kms, compose_hash=COMPOSE, device_id=DEVICE)


# -- the webhook --------------------------------------------------------------------------------------


def test_webhook_starts_denies_at_once_and_recovers_without_a_restart(
    anvil: Anvil,
    auth_deployment: KmsDeployment,
    allowed_app: AppAuth,
    dead_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rpc = service_rpc(dead_url)
    source = LazyKmsRegistry(rpc, auth_deployment.kms)  # no chain id: learned when the RPC first answers
    body = app_boot(allowed_app)
    with (
        caplog.at_level(logging.DEBUG),
        Authorizer(source, timeout=3.0) as authorizer,
        serve(create_webhook_app(authorizer)) as url,
        httpx.Client(timeout=10.0) as http,
    ):
        health = http.get(url + "/")
        assert (health.status_code, health.json()) == (500, HEALTH_ERROR)
        attempts = rpc.stats.requests  # the refusal that opened the breaker
        for path in ("/bootAuth/app", "/bootAuth/kms") * 5:
            response = http.post(url + path, json=body)
            assert (response.status_code, response.json()) == (200, UNAVAILABLE)
        assert http.get(url + "/").status_code == 500
        assert rpc.stats.requests == attempts == 1  # eleven answers, not one more connection attempt
        assert rpc.stats.fast_failures >= 11

        with FlakyProxy(anvil.url, port=port_of(dead_url)) as revived:
            wait_until(lambda: http.get(url + "/").status_code == 200)
            assert http.get(url + "/").json() == {
                "status": "ok",
                "kmsContractAddr": auth_deployment.kms,
                "ethRpcUrl": dead_url,
                "gatewayAppId": GATEWAY_APP_ID,
                "chainId": 31337,
                "appAuthImplementation": auth_deployment.app_implementation,
                "appImplementation": auth_deployment.app_implementation,
            }
            assert http.post(url + "/bootAuth/app", json=body).json() == ALLOWED
            assert revived.records  # the answers came through the port that was dead
    rpc.close()
    log = service_log(caplog)
    assert log.count("refuses connections") == 1  # the cause, once per outage
    outage_warnings = [
        r for r in caplog.records if r.name == "warden.kms.authorization" and r.levelno >= logging.WARNING
    ]
    assert len(outage_warnings) == 1, [r.getMessage() for r in outage_warnings]
    assert "answers again" in log
    assert SECRET not in log and "apikey" not in log


def test_a_chain_id_given_is_checked_when_the_chain_first_answers(
    anvil: Anvil, auth_kms: KmsRegistry, allowed_app: AppAuth, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = service_rpc(dead_url)
    source = LazyKmsRegistry(rpc, auth_kms.address, chain_id=8453)  # Base; the node behind the port is anvil
    with (
        caplog.at_level(logging.INFO),
        Authorizer(source, timeout=3.0) as authorizer,
        serve(create_webhook_app(authorizer)) as url,
        FlakyProxy(anvil.url, port=port_of(dead_url)),
    ):
        assert rpc.breaker is not None
        wait_until(lambda: rpc.breaker is not None and rpc.breaker.state == "closed")
        assert httpx.post(url + "/bootAuth/app", json=app_boot(allowed_app)).json() == UNAVAILABLE
        assert httpx.get(url + "/").status_code == 500
        assert source.opened is None
    rpc.close()
    assert "wrong chain" in service_log(caplog) and "expected base (8453)" in service_log(caplog)


# -- the KMS ------------------------------------------------------------------------------------------


def test_kms_starts_denies_keys_at_once_and_recovers_without_a_restart(
    tmp_path: Path, anvil: Anvil, chain: Chain, owner: Signer, auth_kms: KmsRegistry, dead_url: str
) -> None:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    node = SimNode.load_or_create(tmp_path / "node", "prod5", "devnet")
    app = deploy_app(chain, owner, auth_kms, device_id=node.device_id, compose_hash=COMPOSE)
    cvm = SimCvm(node, pki, app_id=bytes.fromhex(app.address[2:]), compose_hash=COMPOSE,
                 instance_id=(1).to_bytes(20, "big"), os_image_hash=ALLOWED_OS_IMAGE,
                 key_provider=b'{"name":"kms","id":"devnet"}')  # fmt: skip
    policy = AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)
    rpc = service_rpc(dead_url)
    source = LazyKmsRegistry(rpc, auth_kms.address, chain_id=31337)
    with (
        Authorizer(source, timeout=3.0) as authorizer,
        serve(create_kms_app(KmsService(RootKeys.generate(), authorizer, policy))) as url,
        httpx.Client(timeout=10.0) as http,
    ):
        assert http.get(url + "/health").text == "OK"  # liveness: the process is fine
        status = http.get(url + "/")
        assert status.status_code == 503
        assert status.json() == {
            "status": "error",
            "version": "0.5.7",
            "chain": {
                "status": "unavailable",
                "message": BACKEND_UNAVAILABLE,
                "chain_id": 31337,
                "kms_contract_address": auth_kms.address,
                "rpc": dead_url,
            },
        }
        guest = Guest(cvm, KmsClient(url), gateway=False)
        for _ in range(4):
            with pytest.raises(KmsRefused, match=r"^Boot denied: authorization backend unavailable: .*RPC unavailable"):
                guest.boot()
        assert rpc.stats.requests == 1  # only the refusal that opened the breaker reached for the network
        # what needs no chain is still served
        assert KmsClient(url).call("GetAppEnvEncryptPubKey", {"app_id": app.address[2:]})["public_key"]

        with FlakyProxy(anvil.url, port=port_of(dead_url)):
            wait_until(lambda: http.get(url + "/").status_code == 200)
            assert http.get(url + "/").json()["chain"] == {
                "status": "ok",
                "chain_id": 31337,
                "gateway_app_id": GATEWAY_APP_ID,
                "kms_contract_address": auth_kms.address,
                "rpc": dead_url,
            }
            assert guest.boot().gateway_app_id == GATEWAY_APP_ID  # keys released: the same KMS, no restart
    rpc.close()


# -- the commands, as processes -----------------------------------------------------------------------


def test_auth_serve_starts_with_the_rpc_down_and_recovers(
    anvil: Anvil, auth_kms: KmsRegistry, allowed_app: AppAuth, dead_url: str
) -> None:
    # one process: its breaker logs the outage once (with N workers, each worker has its own breaker)
    with auth_serve(auth_kms.address, f"{dead_url}/v2/{SECRET}", "--workers", "1") as served:
        url = served.url
        assert f"DstackKms {auth_kms.address} (chain not known yet) via {dead_url}" in served.banner
        body = app_boot(allowed_app)
        health = httpx.get(url + "/", timeout=10)
        assert (health.status_code, health.json()) == (500, HEALTH_ERROR)
        for _ in range(3):
            assert httpx.post(url + "/bootAuth/app", json=body, timeout=10).json() == UNAVAILABLE
        with FlakyProxy(anvil.url, port=port_of(dead_url)):
            wait_until(lambda: httpx.get(url + "/", timeout=10).status_code == 200)
            assert httpx.get(url + "/", timeout=10).json()["chainId"] == 31337
            assert httpx.post(url + "/bootAuth/app", json=body, timeout=10).json() == ALLOWED
    assert served.returncode == 0, served.err
    assert "the chain does not answer yet" in served.err
    assert served.err.count("refuses connections") == 1 and "answers again" in served.err
    assert SECRET not in served.banner + served.out + served.err


def test_one_shot_commands_against_a_dead_rpc_still_fail_with_a_clear_message(
    tmp_path: Path, auth_kms: KmsRegistry, allowed_app: AppAuth, dead_url: str
) -> None:
    boot_file = tmp_path / "boot.json"
    boot_file.write_text(json.dumps(app_boot(allowed_app)))
    run = warden("auth", "check", "--boot-info", str(boot_file), "--kms", auth_kms.address, "--rpc-url", dead_url)
    assert_clean_error(run, 1, "cannot connect")


def test_auth_serve_still_refuses_a_wrong_kms_address_while_the_chain_answers(anvil: Anvil, stranger: Signer) -> None:
    """Starting while the RPC is down must not hide a misconfiguration the chain can already show."""
    command = [sys.executable, "-m", "warden.cli.main", "auth", "serve", "--port", "0", "--kms", stranger.address]
    run = subprocess.run([*command, "--rpc-url", anvil.url], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "error: no contract at" in run.stderr and "Traceback" not in run.stderr
