"""/api/openapi.json, as a user's code generator reads it from a served control plane: the bearer token
scheme, a response model for every /api route, and the 401/404 answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import plane_world, served
from warden.chain.connection import Chain

ANSWER_MODELS = {
    ("get", "/api/workspace"): "WorkspaceAnswer",
    ("get", "/api/nodes"): "NodeList",
    ("post", "/api/nodes"): "Node",
    ("get", "/api/nodes/{name}"): "NodeDetail",
    ("get", "/api/nodes/{name}/history"): "NodeHistory",
    ("post", "/api/nodes/{name}/attestation"): "IdentityUpdate",
    ("get", "/api/apps"): "AppList",
    ("post", "/api/apps"): "App",
    ("get", "/api/apps/{app}"): "App",
    ("get", "/api/apps/{app}/device-allowlist"): "DeviceAllowlist",
    ("get", "/api/apps/{app}/history"): "AppHistory",
    ("get", "/api/cvms"): "CvmList",
    ("post", "/api/cvms"): "Cvm",
    ("get", "/api/cvms/{key}"): "Cvm",
    ("post", "/api/cvms/{key}/status"): "Cvm",
    ("post", "/api/cvms/{key}/move"): "Cvm",
    ("post", "/api/probe/nonce"): "NonceAnswer",
    ("post", "/api/probe/report"): "ProbeAnswer",
    ("get", "/api/alerts"): "AlertList",
    ("get", "/api/alerts/webhooks"): "WebhookList",
    ("post", "/api/alerts/webhooks"): "CreatedWebhook",
    ("delete", "/api/alerts/webhooks/{webhook_id}"): "Webhook",
    ("post", "/api/alerts/test"): "TestResults",
    ("post", "/api/alerts/retry"): "Retried",
    ("post", "/api/alerts/sent-txs"): "Recorded",
}
# the routes that only list the workspace's own things or create one look nothing up, so never answer 404
NO_LOOKUP = {("get", "/api/workspace"), ("get", "/api/nodes"), ("post", "/api/nodes"), ("get", "/api/apps"),
             ("post", "/api/apps"), ("get", "/api/alerts"), ("get", "/api/alerts/webhooks"),
             ("post", "/api/alerts/webhooks"), ("post", "/api/alerts/retry"),
             ("post", "/api/alerts/sent-txs")}  # fmt: skip


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, chain: Chain) -> Iterator[dict[str, Any]]:
    with plane_world("sqlite", tmp_path_factory.mktemp("plane"), chain) as world, served(world) as url:
        answer = httpx.get(url + "/api/openapi.json")  # no token: the API's description is public
        assert answer.status_code == 200
        yield answer.json()


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
    }


def schema_of(spec: dict[str, Any], response: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A documented answer's model: its name and its schema."""
    name = str(response["content"]["application/json"]["schema"]["$ref"]).removeprefix("#/components/schemas/")
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return name, schema


def test_the_api_token_is_a_bearer_scheme_every_route_requires(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"] == {
        "WorkspaceToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "wdn_…",
            "description": "A workspace's API token (`warden workspace token`, WARDEN_API_TOKEN)",
        }
    }
    for key, operation in operations(spec).items():
        assert operation["security"] == [{"WorkspaceToken": []}], key


def test_every_route_documents_its_answer_model_its_401_and_its_404(spec: dict[str, Any]) -> None:
    assert set(operations(spec)) == set(ANSWER_MODELS)  # a new route is listed here with its model
    for key, operation in operations(spec).items():
        responses = operation["responses"]
        ok = next(code for code in responses if code.startswith("2"))
        name, schema = schema_of(spec, responses[ok])
        assert name == ANSWER_MODELS[key] and schema["properties"], key
        assert schema_of(spec, responses["401"])[0] == "ErrorDetail", key
        if key in NO_LOOKUP:
            assert "404" not in responses, key
        else:
            assert schema_of(spec, responses["404"])[0] == "ErrorDetail", key
    assert schema_of(spec, operations(spec)[("post", "/api/nodes")]["responses"]["409"])[0] == "ErrorDetail"
    assert spec["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


def test_byte_values_are_0x_lowercase_hex_and_addresses_checksummed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["DeviceRow"]["properties"]["device_id"] == {
        "type": "string", "pattern": "^0x[0-9a-f]{64}$", "description": "32 bytes as 0x-lowercase hex",
        "title": "Device Id",
    }  # fmt: skip
    ppid, null = schemas["Node"]["properties"]["ppid"]["anyOf"]
    assert ppid["pattern"] == "^0x(?:[0-9a-f]{2})*$" and null == {"type": "null"}
    assert schemas["AppEvent"]["properties"]["tx"]["pattern"] == "^0x[0-9a-f]{64}$"
    owner = schemas["DeviceAllowlist"]["properties"]["owner"]
    assert owner["pattern"] == "^0x[0-9a-fA-F]{40}$" and "EIP-55" in owner["description"]
    status = schemas["DeviceRow"]["properties"]["status"]
    assert status["enum"] == ["allowed", "deployed-not-allowed", "known-not-deployed"]


def test_list_routes_document_their_pages(spec: dict[str, Any]) -> None:
    """`limit` and `cursor` on every list, `next_cursor` in its answer, and the 400 a bad one gets."""
    for path, model in (("/api/nodes", "NodeList"), ("/api/apps", "AppList"), ("/api/cvms", "CvmList")):
        operation = operations(spec)[("get", path)]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["limit"]["schema"]["default"] == 100 and "1,000" in params["limit"]["description"], path
        assert not params["limit"]["required"] and not params["cursor"]["required"], path
        assert "next_cursor" in params["cursor"]["description"], path
        assert schema_of(spec, operation["responses"]["400"])[0] == "ErrorDetail", path
        cursor = spec["components"]["schemas"][model]["properties"]["next_cursor"]
        assert (
            cursor["anyOf"] == [{"type": "string"}, {"type": "null"}]
            and "null on the last page" in cursor["description"]
        ), model
