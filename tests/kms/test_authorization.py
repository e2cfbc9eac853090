"""The Authorizer on its own (padding, fail-closed causes, the deadline) and `warden auth check|serve`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kms.conftest import ALLOWED_OS_IMAGE, GATEWAY_APP_ID, SECRET
from tests.support.chain import deploy_app, send
from tests.support.cli import assert_clean_error, warden
from tests.support.flaky_proxy import FlakyProxy
from tests.support.processes import auth_serve
from warden.chain.app import ZERO_ADDRESS, AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil
from warden.identity.bootinfo import BootInfo
from warden.kms.authorization import (
    Authorizer,
    BackendUnavailable,
    Decision,
    InvalidBootInfo,
    boot_check,
    public_endpoint,
)

UNAVAILABLE = "authorization backend unavailable: "


def h(label: str, size: int = 32) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:size]


def boot(app_id: bytes, **changes: object) -> BootInfo:
    fields: dict[str, object] = {
        "tee_variant": "dstack-tdx",
        "mr_aggregated": h("mr"),
        "os_image_hash": ALLOWED_OS_IMAGE,
        "mr_system": h("mr-system"),
        "app_id": app_id,
        "compose_hash": h("compose"),
        "instance_id": h("instance", 20),
        "device_id": h("device"),
        "key_provider_info": b"",
        "tcb_status": "UpToDate",
        "advisory_ids": (),
    }
    fields.update(changes)
    return BootInfo(**fields)  # type: ignore[arg-type]


def app_id_of(app: AppAuth) -> bytes:
    return bytes.fromhex(app.address[2:])


@pytest.fixture
def app_policy(chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, auth_kms, compose_hash=h("compose"), device_id=h("device"))


@pytest.fixture
def authorizer(auth_kms: KmsRegistry) -> Iterator[Authorizer]:
    with Authorizer(auth_kms, timeout=5.0) as value:
        yield value


@pytest.fixture
def flaky(anvil: Anvil) -> Iterator[FlakyProxy]:
    with FlakyProxy(anvil.url, hang_seconds=5.0) as proxy:
        yield proxy


def through(url: str, chain: Chain, address: str, *, timeout: float = 0.3, retries: int = 1) -> KmsRegistry:
    """A KmsRegistry whose RPC client talks to `url` (no network call to build it)."""
    return KmsRegistry(Chain(RpcClient(url, timeout=timeout, retries=retries, backoff=0.01), chain.chain_id), address)


# -- BootInfo → the contract's tuple ----------------------------------------------------------------


def test_short_fields_are_left_padded_and_an_empty_instance_is_the_zero_address() -> None:
    check = boot_check(boot(b"\x01\x02", instance_id=b"", device_id=b"\xef\x12", mr_system=b""))
    assert check.app_id == "0x0000000000000000000000000000000000000102"
    assert check.instance_id == ZERO_ADDRESS
    assert check.device_id == bytes(30) + b"\xef\x12"
    assert check.mr_system == bytes(32)
    assert check.compose_hash == h("compose")
    full = boot_check(boot(h("app", 20)))
    assert full.app_id.lower() == "0x" + h("app", 20).hex()
    assert full.instance_id.lower() == "0x" + h("instance", 20).hex()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("app_id", bytes(21)),
        ("instance_id", bytes(21)),
        ("mr_aggregated", bytes(33)),
        ("app_id", "0x12"),
        ("tcb_status", 5),
        ("advisory_ids", (None,)),
    ],
)
def test_malformed_fields_are_refused_without_a_chain_call(
    chain: Chain, auth_kms: KmsRegistry, field: str, value: object
) -> None:
    changes: dict[str, Any] = {field: value}
    bad = dataclasses.replace(boot(h("app", 20)), **changes)
    with pytest.raises(InvalidBootInfo):
        boot_check(bad)
    registry = KmsRegistry(Chain(RpcClient(chain.rpc.url), chain.chain_id), auth_kms.address)
    with Authorizer(registry) as authorizer:
        decision = authorizer.authorize_app(bad)
    assert not decision.allowed and decision.reason.startswith("invalid authorization request: ")
    assert registry.chain.rpc.stats.requests == 0
    registry.chain.close()


# -- decisions ----------------------------------------------------------------------------------------


def test_decisions_carry_the_contract_reason_and_the_gateway_app_id(
    authorizer: Authorizer, app_policy: AppAuth
) -> None:
    app = app_id_of(app_policy)
    assert authorizer.authorize_app(boot(app)) == Decision(True, "", GATEWAY_APP_ID)
    assert authorizer.authorize_app(boot(app, device_id=h("other"))) == Decision(
        False, "Device not allowed", GATEWAY_APP_ID
    )
    assert authorizer.authorize_app(boot(h("nobody", 20))) == Decision(False, "App not registered", GATEWAY_APP_ID)
    assert authorizer.authorize_kms(boot(app)) == Decision(False, "Aggregated MR not allowed", GATEWAY_APP_ID)


def test_concurrent_checks_each_get_their_own_answer(authorizer: Authorizer, app_policy: AppAuth) -> None:
    app = app_id_of(app_policy)
    devices = [h("device") if i % 2 else h(f"device-{i}") for i in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        decisions = list(pool.map(lambda d: authorizer.authorize_app(boot(app, device_id=d)), devices))
    assert [d.allowed for d in decisions] == [d == h("device") for d in devices]


# -- failing closed -----------------------------------------------------------------------------------


def test_unreachable_rpc(chain: Chain, auth_kms: KmsRegistry, app_policy: AppAuth, dead_url: str) -> None:
    with Authorizer(through(dead_url, chain, auth_kms.address)) as authorizer:
        decision = authorizer.authorize_app(boot(app_id_of(app_policy)))
    assert decision == Decision(False, decision.reason, "", unavailable=True)
    assert decision.reason.startswith(UNAVAILABLE + "batch of 2: RPC unavailable (cannot connect")


@pytest.mark.parametrize(
    ("faults", "cause"),
    [
        (("500", "500"), "RPC unavailable (HTTP 500) after 2 attempts"),
        (("hang", "hang"), "RPC unavailable (timed out after 0.3s) after 2 attempts"),
        (("reject",), "rejected by injected fault"),
    ],
)
def test_rpc_faults(
    chain: Chain, auth_kms: KmsRegistry, app_policy: AppAuth, flaky: FlakyProxy, faults: tuple[str, ...], cause: str
) -> None:
    flaky.script(*faults)  # type: ignore[arg-type]
    with Authorizer(through(flaky.url, chain, auth_kms.address)) as authorizer:
        decision = authorizer.authorize_app(boot(app_id_of(app_policy)))
        assert not decision.allowed and decision.unavailable and decision.gateway_app_id == ""
        assert decision.reason.startswith(UNAVAILABLE) and cause in decision.reason, decision.reason
        assert authorizer.authorize_app(boot(app_id_of(app_policy))).allowed  # answered again right after


def test_the_deadline_holds_whatever_the_rpc_client_waits(
    chain: Chain, auth_kms: KmsRegistry, app_policy: AppAuth, flaky: FlakyProxy
) -> None:
    flaky.script("hang")
    registry = through(flaky.url, chain, auth_kms.address, timeout=10.0, retries=0)
    with Authorizer(registry, timeout=0.3) as authorizer:
        started = time.monotonic()
        decision = authorizer.authorize_app(boot(app_id_of(app_policy)))
        elapsed = time.monotonic() - started
    assert decision == Decision(False, UNAVAILABLE + "no answer within 0.3s", "", unavailable=True)
    assert elapsed < 1.5


def test_a_revert_is_a_backend_failure(chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    # a registered app id whose isAppAllowed reverts: the KMS itself, which then calls itself until it runs out
    send(chain, owner, auth_kms.request("registerApp", auth_kms.address))
    with Authorizer(auth_kms) as authorizer:
        decision = authorizer.authorize_app(boot(bytes.fromhex(auth_kms.address[2:])))
    assert decision.unavailable and decision.reason.startswith(UNAVAILABLE + "isAppAllowed reverted")


def test_a_malformed_answer_is_a_backend_failure(chain: Chain, stranger: Signer, app_policy: AppAuth) -> None:
    # an account without code answers every eth_call with empty data, which does not decode as (bool, string)
    with Authorizer(KmsRegistry(chain, stranger.address)) as authorizer:
        decision = authorizer.authorize_app(boot(app_id_of(app_policy)))
        assert decision.unavailable and not decision.allowed
        with pytest.raises(BackendUnavailable):
            authorizer.info()


def test_a_closed_authorizer_denies(auth_kms: KmsRegistry, app_policy: AppAuth) -> None:
    authorizer = Authorizer(auth_kms)
    authorizer.close()
    decision = authorizer.authorize_app(boot(app_id_of(app_policy)))
    assert decision.unavailable and not decision.allowed


# -- metadata -----------------------------------------------------------------------------------------


def test_info(authorizer: Authorizer, auth_kms: KmsRegistry, chain: Chain) -> None:
    info = authorizer.info()
    assert (info.kms_contract_addr, info.gateway_app_id, info.chain_id) == (auth_kms.address, GATEWAY_APP_ID, 31337)
    assert info.app_implementation == auth_kms.call("appImplementation")
    assert info.eth_rpc_url == chain.rpc.url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@eth.example.com:8443/v2/KEY?apikey=KEY#x", "https://eth.example.com:8443"),
        ("https://base-mainnet.g.alchemy.com/v2/KEY", "https://base-mainnet.g.alchemy.com"),
        ("http://[::1]:8545/rpc", "http://[::1]:8545"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("no scheme", "configured"),
        ("http://[::1", "configured"),
    ],
)
def test_public_endpoint(url: str, shown: str) -> None:
    assert public_endpoint(url) == shown


# -- warden auth check --------------------------------------------------------------------------------


def write_boot(tmp_path: Path, body: dict[str, object]) -> Path:
    path = tmp_path / "boot.json"
    path.write_text(json.dumps(body))
    return path


def test_check_allowed_and_denied(tmp_path: Path, anvil: Anvil, auth_kms: KmsRegistry, app_policy: AppAuth) -> None:
    env = {"ETH_RPC_URL": anvil.url, "WARDEN_KMS": auth_kms.address}
    body = boot(app_id_of(app_policy)).webhook_json()

    allowed = warden("auth", "check", "--boot-info", str(write_boot(tmp_path, body)), env=env)
    assert allowed.exit_code == 0, allowed.stderr
    assert allowed.stdout.startswith("allowed")
    assert GATEWAY_APP_ID in allowed.stdout

    denied = warden(
        "auth", "check", "--boot-info", str(write_boot(tmp_path, {**body, "deviceId": "0x" + h("x").hex()})), env=env
    )
    assert denied.exit_code == 1
    assert denied.stdout.startswith("denied: Device not allowed")

    as_json = warden("auth", "check", "--boot-info", str(tmp_path / "boot.json"), "--json", env=env)
    assert as_json.exit_code == 1
    assert as_json.json() == {
        "allowed": False,
        "reason": "Device not allowed",
        "gateway_app_id": GATEWAY_APP_ID,
        "backend_unavailable": False,
        "check": "app",
        "app_id": "0x" + app_id_of(app_policy).hex(),
        "kms": auth_kms.address,
        "chain_id": 31337,
    }


def test_check_kms_boot(tmp_path: Path, anvil: Anvil, chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    mr, device = h("cli-kms-mr"), h("cli-kms-device")
    body = boot(bytes(20), mr_aggregated=mr, device_id=device).webhook_json()
    path = str(write_boot(tmp_path, body))
    args = ("auth", "check", "--boot-info", path, "--kms", auth_kms.address, "--rpc-url", anvil.url, "--json")
    first = warden(*args, "--kms-boot")
    assert (first.exit_code, first.json()["reason"]) == (1, "Aggregated MR not allowed")
    send(chain, owner, auth_kms.request("addKmsAggregatedMr", mr))
    send(chain, owner, auth_kms.request("addKmsDevice", device))
    second = warden(*args, "--kms-boot")
    assert (second.exit_code, second.json()["allowed"], second.json()["check"]) == (0, True, "kms")
    assert warden(*args).json()["reason"] == "App not registered"  # without --kms-boot: isAppAllowed


def test_check_refuses_a_bad_file(tmp_path: Path, anvil: Anvil, auth_kms: KmsRegistry) -> None:
    env = {"ETH_RPC_URL": anvil.url, "WARDEN_KMS": auth_kms.address}
    body = boot(h("app", 20)).webhook_json()
    oversized = write_boot(tmp_path, {**body, "mrAggregated": "ab" * 33})
    assert_clean_error(
        warden("auth", "check", "--boot-info", str(oversized), env=env),
        2,
        "invalid authorization request",
        "mrAggregated",
    )
    missing = write_boot(tmp_path, {k: v for k, v in body.items() if k != "deviceId"})
    assert_clean_error(warden("auth", "check", "--boot-info", str(missing), env=env), 2, "deviceId")
    (tmp_path / "not.json").write_text("{")
    assert_clean_error(warden("auth", "check", "--boot-info", str(tmp_path / "not.json"), env=env), 2, "not JSON")
    assert_clean_error(warden("auth", "check", "--boot-info", str(tmp_path / "absent.json"), env=env), 2, "cannot read")


# -- warden auth serve --------------------------------------------------------------------------------


def test_serve_help() -> None:
    run = warden("auth", "serve", "--help")
    assert run.exit_code == 0
    assert "Example: warden auth serve" in run.stdout
    for option in ("--host", "--port", "--kms", "--rpc-url", "--chain-id"):
        assert option in run.stdout


def test_serve_runs_the_webhook_until_interrupted(anvil: Anvil, flaky: FlakyProxy, auth_kms: KmsRegistry) -> None:
    with auth_serve(auth_kms.address, f"{flaky.url}/v2/{SECRET}", timeout=30) as served:
        health = httpx.get(served.url + "/", timeout=10).json()
        assert (health["status"], health["kmsContractAddr"], health["ethRpcUrl"]) == ("ok", auth_kms.address, flaky.url)
        body = boot(h("nobody", 20)).webhook_json()
        answer = httpx.post(served.url + "/bootAuth/app", json=body, timeout=10).json()
        assert answer == {"isAllowed": False, "reason": "App not registered", "gatewayAppId": GATEWAY_APP_ID}
    assert served.returncode == 0, served.err
    assert "POST /bootAuth/app" in served.out  # uvicorn's access log (on stdout)
    assert SECRET not in served.banner + served.out + served.err


def test_serve_with_two_workers_answers_from_both_processes(
    anvil: Anvil, flaky: FlakyProxy, auth_kms: KmsRegistry
) -> None:
    with auth_serve(auth_kms.address, f"{flaky.url}/v2/{SECRET}", "--workers", "2", timeout=60) as served:
        assert "2 workers" in served.banner
        body = boot(h("nobody", 20)).webhook_json()
        for _ in range(20):  # a new connection each time: the workers share the listening socket
            answer = httpx.post(served.url + "/bootAuth/app", json=body, headers={"Connection": "close"}, timeout=10)
            assert answer.json() == {"isAllowed": False, "reason": "App not registered", "gatewayAppId": GATEWAY_APP_ID}
    assert served.returncode == 0, served.err
    started = {line for line in served.err.splitlines() if "Started server process" in line}
    assert len(started) == 2, served.err  # two worker processes served
    assert SECRET not in served.banner + served.out + served.err
