"""The auth webhook over real HTTP (uvicorn on 127.0.0.1, httpx as the client) against a DstackKms on anvil.

Expected bodies are those of dstack's auth-eth: the contract's reason verbatim, HTTP 400
`{"isAllowed": false, "reason": "invalid authorization request", "gatewayAppId": ""}` for a body that
does not fit the schema, HTTP 200 with "authorization backend unavailable" when the chain cannot answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.kms.conftest import ALLOWED_OS_IMAGE, GATEWAY_APP_ID, SECRET, Webhook, service_log
from tests.support.chain import deploy_app, send
from tests.support.http_server import serve
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import KmsDeployment
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.identity.bootinfo import BootInfo
from warden.kms.authorization import Authorizer
from warden.kms.webhook import create_webhook_app

INVALID = {"isAllowed": False, "reason": "invalid authorization request", "gatewayAppId": ""}
UNAVAILABLE = {"isAllowed": False, "reason": "authorization backend unavailable", "gatewayAppId": ""}
HEALTH_ERROR = {"status": "error", "message": "authorization backend unavailable"}
ALLOWED = {"isAllowed": True, "reason": "", "gatewayAppId": GATEWAY_APP_ID}
ENDPOINTS = ("/bootAuth/app", "/bootAuth/kms")


def h(label: str, size: int = 32) -> bytes:
    """A deterministic id for a test value."""
    return hashlib.sha256(label.encode()).digest()[:size]


def denied(reason: str) -> dict[str, Any]:
    return {"isAllowed": False, "reason": reason, "gatewayAppId": GATEWAY_APP_ID}


def boot_body(
    app_id: str | bytes,
    *,
    compose: bytes,
    device: bytes,
    os_image: bytes = ALLOWED_OS_IMAGE,
    mr_aggregated: bytes = b"",
    tcb_status: str = "UpToDate",
) -> dict[str, Any]:
    """What a dstack KMS posts: camelCase, lowercase hex without 0x, every field present."""
    app_hex = app_id.hex() if isinstance(app_id, bytes) else app_id.removeprefix("0x").lower()
    return {
        "teeVariant": "dstack-tdx",
        "mrAggregated": (mr_aggregated or h("mr-aggregated")).hex(),
        "osImageHash": os_image.hex(),
        "mrSystem": h("mr-system").hex(),
        "appId": app_hex,
        "composeHash": compose.hex(),
        "instanceId": h("instance", 20).hex(),
        "deviceId": device.hex(),
        "keyProviderInfo": "",
        "tcbStatus": tcb_status,
        "advisoryIds": [],
    }


@pytest.fixture
def app_policy(chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> AppAuth:
    """A factory-deployed app allowing compose hash h("compose") on device h("device") only."""
    return deploy_app(chain, owner, auth_kms, compose_hash=h("compose"), device_id=h("device"))


# -- decisions from the chain -------------------------------------------------------------------------


def test_app_decisions_follow_the_contract_order(
    webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry, app_policy: AppAuth
) -> None:
    good = boot_body(app_policy.address, compose=h("compose"), device=h("device"))
    unregistered = boot_body(h("nobody", 20), compose=h("compose"), device=h("device"))
    assert webhook.post("/bootAuth/app", unregistered).json() == denied("App not registered")

    new_image = h("os-image-added-later")
    response = webhook.post("/bootAuth/app", {**good, "osImageHash": new_image.hex()})
    assert (response.status_code, response.json()) == (200, denied("OS image is not allowed"))
    send(chain, owner, auth_kms.add_os_image(new_image))
    assert webhook.post("/bootAuth/app", {**good, "osImageHash": new_image.hex()}).json() == ALLOWED

    assert webhook.post("/bootAuth/app", {**good, "composeHash": h("other").hex()}).json() == denied(
        "Compose hash not allowed"
    )
    assert webhook.post("/bootAuth/app", {**good, "deviceId": h("other").hex()}).json() == denied("Device not allowed")
    response = webhook.post("/bootAuth/app", good)
    assert (response.status_code, response.json()) == (200, ALLOWED)


def test_allow_any_device_allows_every_device(
    webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry
) -> None:
    app = deploy_app(chain, owner, auth_kms, compose_hash=h("compose"), allow_any_device=True)
    for device in (h("device-1"), h("device-2"), b""):
        body = boot_body(app.address, compose=h("compose"), device=device)
        assert webhook.post("/bootAuth/app", body).json() == ALLOWED


def test_required_tcb_status(webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    strict = deploy_app(
        chain, owner, auth_kms, compose_hash=h("compose"), device_id=h("device"), require_tcb_up_to_date=True
    )
    body = boot_body(strict.address, compose=h("compose"), device=h("device"))
    assert webhook.post("/bootAuth/app", body).json() == ALLOWED
    for status in ("OutOfDate", "SWHardeningNeeded", ""):
        answer = webhook.post("/bootAuth/app", {**body, "tcbStatus": status}).json()
        assert answer == denied("TCB status is not up to date"), status
    # the TCB check comes before the compose hash in DstackApp
    stale = {**body, "tcbStatus": "OutOfDate", "composeHash": h("other").hex()}
    assert webhook.post("/bootAuth/app", stale).json() == denied("TCB status is not up to date")
    # without the flag an outdated TCB is the app owner's business
    lenient = deploy_app(chain, owner, auth_kms, compose_hash=h("compose"), device_id=h("device"))
    body = boot_body(lenient.address, compose=h("compose"), device=h("device"), tcb_status="OutOfDate")
    assert webhook.post("/bootAuth/app", body).json() == ALLOWED


def test_kms_boot_uses_is_kms_allowed(webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    mr, device = h("kms-mr"), h("kms-device")
    body = boot_body(bytes(20), compose=b"", device=device, mr_aggregated=mr)
    answers = [webhook.post("/bootAuth/kms", {**body, "tcbStatus": "OutOfDate"}).json()]
    answers.append(webhook.post("/bootAuth/kms", {**body, "osImageHash": h("unknown-image").hex()}).json())
    answers.append(webhook.post("/bootAuth/kms", body).json())
    send(chain, owner, auth_kms.request("addKmsAggregatedMr", mr))
    answers.append(webhook.post("/bootAuth/kms", body).json())
    send(chain, owner, auth_kms.request("addKmsDevice", device))
    answers.append(webhook.post("/bootAuth/kms", body).json())
    assert answers == [
        denied("TCB status is not up to date"),
        denied("OS image is not allowed"),
        denied("Aggregated MR not allowed"),
        denied("KMS is not allowed to boot on this device"),
        ALLOWED,
    ]
    # the same body on the app endpoint goes through isAppAllowed
    assert webhook.post("/bootAuth/app", body).json() == denied("App not registered")


def test_revocation_takes_effect_on_the_next_request(
    webhook: Webhook, chain: Chain, owner: Signer, app_policy: AppAuth
) -> None:
    body = boot_body(app_policy.address, compose=h("compose"), device=h("device"))
    assert webhook.post("/bootAuth/app", body).json() == ALLOWED
    send(chain, owner, app_policy.remove_device(h("device")))
    before = webhook.chain_requests()
    assert webhook.post("/bootAuth/app", body).json() == denied("Device not allowed")
    # one JSON-RPC batch per decision: the check and gatewayAppId, read fresh
    (record,) = webhook.proxy.records[before:]
    assert record.methods == ("eth_call", "eth_call")
    send(chain, owner, app_policy.add_device(h("device")))
    assert webhook.post("/bootAuth/app", body).json() == ALLOWED


def test_gateway_app_id_is_read_per_request(
    webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry
) -> None:
    body = boot_body(h("nobody", 20), compose=b"", device=b"")
    assert webhook.post("/bootAuth/app", body).json()["gatewayAppId"] == GATEWAY_APP_ID
    send(chain, owner, auth_kms.request("setGatewayAppId", "gateway-v2"))
    try:
        assert webhook.post("/bootAuth/app", body).json()["gatewayAppId"] == "gateway-v2"
        assert webhook.http.get(webhook.url + "/").json()["gatewayAppId"] == "gateway-v2"
    finally:
        send(chain, owner, auth_kms.request("setGatewayAppId", GATEWAY_APP_ID))


# -- hex forms --------------------------------------------------------------------------------------


def test_hex_with_or_without_0x_any_case_and_short_values_left_padded(webhook: Webhook, app_policy: AppAuth) -> None:
    body = boot_body(app_policy.address, compose=h("compose"), device=h("device"))
    variants = [
        {"appId": app_policy.address},  # EIP-55 mixed case with 0x
        {"appId": app_policy.address[2:].upper()},
        {"composeHash": "0x" + h("compose").hex()},
        {"composeHash": h("compose").hex().upper()},
        {"instanceId": ""},  # no instance id: the zero address
        {"instanceId": "0x"},
        {"mrSystem": "0x1"},
        {"mrAggregated": ""},
    ]
    for change in variants:
        assert webhook.post("/bootAuth/app", {**body, **change}).json() == ALLOWED, change
    optional_left_out = {k: v for k, v in body.items() if k not in ("mrSystem", "tcbStatus", "advisoryIds")}
    assert webhook.post("/bootAuth/app", optional_left_out).json() == ALLOWED


def test_short_device_id_is_left_padded(webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    device = bytes(30) + b"\xef\x12"
    app = deploy_app(chain, owner, auth_kms, compose_hash=h("compose"), device_id=device)
    body = boot_body(app.address, compose=h("compose"), device=h("device"))
    for form in ("ef12", "0xef12", "0xEF12", "0ef12", "00ef12", "0x" + device.hex(), device.hex()):
        assert webhook.post("/bootAuth/app", {**body, "deviceId": form}).json() == ALLOWED, form
    assert webhook.post("/bootAuth/app", {**body, "deviceId": "ef120"}).json() == denied("Device not allowed")


def test_the_bootinfo_of_warden_identity_is_accepted(webhook: Webhook, app_policy: AppAuth) -> None:
    boot = BootInfo(
        tee_variant="dstack-tdx",
        mr_aggregated=h("mr"),
        os_image_hash=ALLOWED_OS_IMAGE,
        mr_system=h("mr-system"),
        app_id=bytes.fromhex(app_policy.address[2:]),
        compose_hash=h("compose"),
        instance_id=b"",
        device_id=h("device"),
        key_provider_info=b'{"name":"kms","id":"3059"}',
        tcb_status="UpToDate",
        advisory_ids=("INTEL-SA-00837",),
    )
    assert webhook.post("/bootAuth/app", boot.webhook_json()).json() == ALLOWED


# -- requests refused before any chain call ---------------------------------------------------------

GOOD = boot_body(h("app", 20), compose=h("compose"), device=h("device"))
REQUIRED = ("mrAggregated", "osImageHash", "appId", "composeHash", "instanceId", "deviceId")

BAD_FIELDS: list[tuple[str, Any]] = [
    ("mrAggregated", "0x" + "ab" * 33),
    ("mrAggregated", "ab" * 33),
    ("mrAggregated", "not-hex"),
    ("mrAggregated", "0X12"),
    ("mrAggregated", "0x0x12"),
    ("mrAggregated", " 12"),
    ("mrAggregated", "12\n"),
    # auth-eth's validator (ajv with fastify's coerceTypes: "array") would turn the next values into strings
    # or one-item lists and accept them; warden refuses any value of the wrong JSON type (a KMS sends strings)
    ("mrAggregated", 1234),
    ("mrAggregated", None),
    ("mrAggregated", ["ab"]),
    ("appId", "0x" + "11" * 21),
    ("instanceId", "11" * 21),
    ("deviceId", "g" * 64),
    ("mrSystem", "ab" * 33),
    ("mrSystem", None),
    ("tcbStatus", "U" * 129),
    ("tcbStatus", 1),
    ("advisoryIds", ["INTEL-SA-00001"] * 129),
    ("advisoryIds", ["x" * 257]),
    ("advisoryIds", "INTEL-SA-00001"),
    ("advisoryIds", [1]),
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_schema_failures_are_400_with_the_canonical_body_and_no_chain_call(webhook: Webhook, path: str) -> None:
    before = webhook.chain_requests()
    bodies: list[Any] = [{**GOOD, field: value} for field, value in BAD_FIELDS]
    bodies += [{k: v for k, v in GOOD.items() if k != missing} for missing in REQUIRED]
    bodies += [{}, [], [GOOD], "body", 1, None, True, {"mraggregated": "12"}]
    for body in bodies:
        response = webhook.post(path, body)
        assert (response.status_code, response.json()) == (400, INVALID), body
    raw_bodies: list[tuple[bytes, str | None]] = [
        (b"", "application/json"),
        (b"{", "application/json"),
        (b'{"mrAggregated": "12",}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (json.dumps({**GOOD, "tcbStatus": "\ud800"}).encode(), "application/json"),  # a lone surrogate
        (httpx.Request("POST", "/", json=GOOD).content, "text/plain"),
        (httpx.Request("POST", "/", json=GOOD).content, None),
    ]
    for content, content_type in raw_bodies:
        headers = {"content-type": content_type} if content_type else {}
        response = webhook.http.post(webhook.url + path, content=content, headers=headers)
        assert (response.status_code, response.json()) == (400, INVALID), content[:40]
    assert webhook.chain_requests() == before


def test_deeply_nested_json_is_refused(webhook: Webhook) -> None:
    before = webhook.chain_requests()
    content = b"[" * 30_000 + b"]" * 30_000
    response = webhook.http.post(
        webhook.url + "/bootAuth/app", content=content, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (400, INVALID)
    assert webhook.chain_requests() == before


def test_unknown_and_ignored_fields_are_accepted(webhook: Webhook, app_policy: AppAuth) -> None:
    body = boot_body(app_policy.address, compose=h("compose"), device=h("device"))
    extras = {"teeVariant": 7, "keyProviderInfo": {"not": "hex"}, "somethingNew": [1, 2], "app_id": "zz"}
    assert webhook.post("/bootAuth/app", {**body, **extras}).json() == ALLOWED


@pytest.mark.parametrize("path", [*ENDPOINTS, "/"])
def test_oversized_bodies_are_413_and_never_reach_the_chain(webhook: Webhook, path: str) -> None:
    before = webhook.chain_requests()
    padded = {**GOOD, "padding": "x" * 70_000}
    response = webhook.post(path, padded)
    assert (response.status_code, response.json()) == (413, INVALID)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold on the stream too
        yield b'{"padding": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    response = webhook.http.post(webhook.url + path, content=chunks(), headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (413, INVALID)
    assert webhook.chain_requests() == before


# -- failing closed ---------------------------------------------------------------------------------


FAULTS = [
    (("500", "500"), "HTTP 500 on every attempt"),
    (("503", "429"), "overloaded"),
    (("hang", "hang"), "no answer before the client timeout"),
    (("drop", "drop"), "connection closed without an answer"),
    (("reject",), "a JSON-RPC error"),
]


@pytest.mark.parametrize(
    ("path", "faults", "what"),
    # every fault on the app endpoint; the KMS endpoint shares the code path, so two suffice there
    [("/bootAuth/app", *fault) for fault in FAULTS] + [("/bootAuth/kms", *FAULTS[0]), ("/bootAuth/kms", *FAULTS[4])],
)
def test_rpc_failures_fail_closed(
    webhook: Webhook,
    app_policy: AppAuth,
    path: str,
    faults: tuple[Any, ...],
    what: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = boot_body(app_policy.address, compose=h("compose"), device=h("device"))
    webhook.proxy.script(*faults)
    with caplog.at_level(logging.DEBUG):
        response = webhook.post(path, body)
    assert (response.status_code, response.json()) == (200, UNAVAILABLE), what
    assert "failed closed" in service_log(caplog)
    assert SECRET not in service_log(caplog)
    assert webhook.post("/bootAuth/app", body).json() == ALLOWED  # the next request is answered again


def test_a_revert_fails_closed(webhook: Webhook, chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> None:
    """An app id registered in the KMS whose isAppAllowed reverts (here: the KMS itself, recursing)."""
    send(chain, owner, auth_kms.request("registerApp", auth_kms.address))
    body = boot_body(auth_kms.address, compose=h("compose"), device=h("device"))
    response = webhook.post("/bootAuth/app", body)
    assert (response.status_code, response.json()) == (200, UNAVAILABLE)


def test_a_dead_rpc_fails_closed(
    chain: Chain, auth_kms: KmsRegistry, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = RpcClient(f"{dead_url}/key/{SECRET}", timeout=0.5, retries=1, backoff=0.01)
    registry = KmsRegistry(Chain(rpc, chain.chain_id), auth_kms.address)
    body = boot_body(h("app", 20), compose=h("compose"), device=h("device"))
    with (
        caplog.at_level(logging.DEBUG),
        Authorizer(registry, timeout=2.0) as authorizer,
        serve(create_webhook_app(authorizer)) as url,
    ):
        for path in ENDPOINTS:
            response = httpx.post(url + path, json=body)
            assert (response.status_code, response.json()) == (200, UNAVAILABLE)
        response = httpx.get(url + "/")
        assert (response.status_code, response.json()) == (500, HEALTH_ERROR)
    rpc.close()
    assert "failed closed" in service_log(caplog)
    assert SECRET not in service_log(caplog)


# -- GET / --------------------------------------------------------------------------------------------


def test_health_reports_the_chain_without_the_rpc_path(webhook: Webhook, auth_deployment: KmsDeployment) -> None:
    response = webhook.http.get(webhook.url + "/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "kmsContractAddr": auth_deployment.kms,
        "ethRpcUrl": webhook.proxy.url,
        "gatewayAppId": GATEWAY_APP_ID,
        "chainId": 31337,
        "appAuthImplementation": auth_deployment.app_implementation,
        "appImplementation": auth_deployment.app_implementation,
    }
    assert SECRET not in response.text


def test_health_when_the_chain_cannot_answer(webhook: Webhook) -> None:
    webhook.proxy.script("500", "500")
    response = webhook.http.get(webhook.url + "/")
    assert (response.status_code, response.json()) == (500, HEALTH_ERROR)
    assert webhook.http.get(webhook.url + "/").status_code == 200


# -- fuzzing ------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
SCHEMA_KEYS = [*REQUIRED, "mrSystem", "tcbStatus", "advisoryIds", "teeVariant", "keyProviderInfo"]


def assert_refused_or_denied(response: httpx.Response) -> None:
    assert response.status_code in (200, 400, 413), response.text
    answer = response.json()
    assert answer["isAllowed"] is False
    if response.status_code != 200:
        assert answer == INVALID


@FUZZ
@given(st.sampled_from(ENDPOINTS), st.binary(max_size=2000))
def test_fuzz_random_bytes(webhook: Webhook, path: str, content: bytes) -> None:
    response = webhook.http.post(webhook.url + path, content=content, headers={"content-type": "application/json"})
    assert_refused_or_denied(response)


@FUZZ
@given(
    st.sampled_from(ENDPOINTS),
    JSON_VALUES | st.dictionaries(st.sampled_from(SCHEMA_KEYS), JSON_VALUES, max_size=len(SCHEMA_KEYS)),
)
def test_fuzz_random_json(webhook: Webhook, path: str, body: Any) -> None:
    assert_refused_or_denied(webhook.post(path, body))


@dataclass(frozen=True)
class Known:
    """The values the fuzzing policy allows: one app, and one KMS measurement and device."""

    app: bytes
    compose: bytes
    device: bytes
    kms_mr: bytes
    kms_device: bytes


@pytest.fixture(scope="module")
def known(chain: Chain, owner: Signer, auth_kms: KmsRegistry) -> Known:
    compose, device, kms_mr, kms_device = h("fuzz-compose"), h("fuzz-device"), h("fuzz-mr"), h("fuzz-kms-device")
    app = deploy_app(chain, owner, auth_kms, compose_hash=compose, device_id=device)
    send(chain, owner, auth_kms.request("addKmsAggregatedMr", kms_mr))
    send(chain, owner, auth_kms.request("addKmsDevice", kms_device))
    return Known(bytes.fromhex(app.address[2:]), compose, device, kms_mr, kms_device)


HEX = "0123456789abcdefABCDEF"


@st.composite
def hex_spelling(draw: st.DrawFn, pool: list[bytes], size: int) -> str:
    """A valid hex field: mostly a value from `pool`, else random bytes, in any accepted spelling."""
    use_pool = draw(st.sampled_from([True, True, True, True, False]))
    value = draw(st.sampled_from(pool)) if use_pool else draw(st.binary(max_size=size))
    digits = value.hex()
    if draw(st.booleans()):
        digits = digits.lstrip("0")  # short values are left-padded
    if draw(st.booleans()):
        digits = digits.upper()
    return draw(st.sampled_from(["", "0x"])) + digits


@st.composite
def bad_hex(draw: st.DrawFn, size: int) -> Any:
    """Something auth-eth's schema refuses for a hex field of `size` bytes."""
    kind = draw(st.sampled_from(["too-long", "not-hex", "bad-prefix", "other-type"]))
    if kind == "too-long":
        return draw(st.sampled_from(["", "0x"])) + draw(st.binary(min_size=size + 1, max_size=size + 4)).hex()
    if kind == "not-hex":
        digits = draw(st.binary(max_size=size - 1)).hex()
        where = draw(st.integers(0, len(digits)))
        return digits[:where] + draw(st.characters(codec="utf-8").filter(lambda c: c not in HEX)) + digits[where:]
    if kind == "bad-prefix":
        return draw(st.sampled_from(["0X", "x", " 0x", "0x0x", "#"])) + draw(st.binary(max_size=4)).hex()
    return draw(st.sampled_from([None, 0, 12, True, [], {}, ["00"]]))


def oracle_hex(value: Any, size: int) -> bytes | None:
    """The padded value the chain should see, or None when the field must be refused."""
    if not isinstance(value, str):
        return None
    digits = value[2:] if value.startswith("0x") else value
    if len(digits) > 2 * size or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return None
    return int(digits or "0", 16).to_bytes(size, "big")


def expected_answer(path: str, body: dict[str, Any], known: Known) -> tuple[int, dict[str, Any]]:
    sizes = {"appId": 20, "instanceId": 20}
    values: dict[str, bytes] = {}
    for name in (*REQUIRED, "mrSystem"):
        if name not in body:
            if name == "mrSystem":
                continue
            return 400, INVALID
        value = oracle_hex(body[name], sizes.get(name, 32))
        if value is None:
            return 400, INVALID
        values[name] = value
    tcb = body.get("tcbStatus", "")
    if not isinstance(tcb, str) or len(tcb) > 128:
        return 400, INVALID
    advisories = body.get("advisoryIds", [])
    if not isinstance(advisories, list) or len(advisories) > 128:
        return 400, INVALID
    if not all(isinstance(a, str) and len(a) <= 256 for a in advisories):
        return 400, INVALID
    if path == "/bootAuth/app":
        checks = [
            (values["appId"] == known.app, "App not registered"),
            (values["osImageHash"] == ALLOWED_OS_IMAGE, "OS image is not allowed"),
            (values["composeHash"] == known.compose, "Compose hash not allowed"),
            (values["deviceId"] == known.device, "Device not allowed"),
        ]
    else:
        checks = [
            (tcb == "UpToDate", "TCB status is not up to date"),
            (values["osImageHash"] == ALLOWED_OS_IMAGE, "OS image is not allowed"),
            (values["mrAggregated"] == known.kms_mr, "Aggregated MR not allowed"),
            (values["deviceId"] == known.kms_device, "KMS is not allowed to boot on this device"),
        ]
    for passed, reason in checks:
        if not passed:
            return 200, denied(reason)
    return 200, ALLOWED


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_answers_match_the_policy(webhook: Webhook, known: Known, data: st.DataObject) -> None:
    """Bodies near the schema: 400 exactly when auth-eth's schema refuses, else the contract's decision."""
    path = data.draw(st.sampled_from(ENDPOINTS))
    sizes = {"appId": 20, "instanceId": 20}
    pools = {
        "appId": [known.app],
        "instanceId": [b""],
        "osImageHash": [ALLOWED_OS_IMAGE],
        "composeHash": [known.compose],
        "deviceId": [known.device] * 3 + [known.kms_device]
        if path == "/bootAuth/app"
        else [known.kms_device] * 3 + [known.device],
        "mrAggregated": [known.kms_mr],
        "mrSystem": [b""],
    }
    body: dict[str, Any] = {name: data.draw(hex_spelling(pool, sizes.get(name, 32))) for name, pool in pools.items()}
    up_to_date = st.just("UpToDate")
    body["tcbStatus"] = data.draw(
        st.one_of(up_to_date, up_to_date, up_to_date, st.sampled_from(["OutOfDate", ""]), st.text(max_size=128))
    )
    body["advisoryIds"] = data.draw(st.lists(st.text(max_size=20), max_size=3))
    broken = data.draw(st.sampled_from([0, 0, 0, 1, 2]))
    for name in data.draw(st.lists(st.sampled_from(sorted(body)), min_size=broken, max_size=broken, unique=True)):
        if data.draw(st.booleans()):
            del body[name]  # a required field missing is refused, an optional one takes its default
        elif name == "tcbStatus":
            body[name] = data.draw(st.sampled_from(["U" * 129, None, 5, ["UpToDate"]]))
        elif name == "advisoryIds":
            body[name] = data.draw(st.sampled_from([["INTEL-SA-1"] * 129, ["x" * 257], "INTEL-SA-1", [1], None]))
        else:
            body[name] = data.draw(bad_hex(sizes.get(name, 32)))
    status, answer = expected_answer(path, body, known)
    event(f"{path} {status} {answer['reason'] or 'allowed'}")
    response = webhook.post(path, body)
    assert (response.status_code, response.json()) == (status, answer), body
