"""The control plane's HTTP API over real HTTP, on SQLite and PostgreSQL, against anvil.

A node posts real devnet quotes (mock Intel PKI, verified by dcap-qvl); its device id drifts after a
firmware update; the merged allowlist says which running node the chain would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.chain import deploy_app, send
from tests.support.control_plane import DATABASES, PlaneWorld, add_node, plane_world, register, served
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.tee.collateral import collateral_json
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

PROD5, PROD9 = bytes([5]) * 32, bytes([9]) * 32


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=DATABASES)
def world(request: pytest.FixtureRequest, tmp_path: Path, chain: Chain, pki: MockIntelPki) -> Iterator[PlaneWorld]:
    policy = AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)
    with plane_world(request.param, tmp_path, chain, attestation=policy) as built:
        yield built


@pytest.fixture
def base_url(world: PlaneWorld) -> Iterator[str]:
    with served(world) as url:
        yield url


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms, device_id=PROD5)


def test_missing_or_wrong_token_is_401_and_says_what_to_send(world: PlaneWorld, base_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wdn_not-a-real-token-at-all"}, {"Authorization": "Basic x"}):
        answer = httpx.get(base_url + "/api/nodes", headers=headers)
        assert answer.status_code == 401
        assert "Bearer" in answer.json()["detail"]
    assert world.client(base_url).get("/api/nodes").status_code == 200


def test_openapi_is_published(base_url: str) -> None:
    spec = httpx.get(base_url + "/api/openapi.json").json()
    assert "/api/apps/{app}/device-allowlist" in spec["paths"]
    assert "/api/nodes/{name}/attestation" in spec["paths"]


def test_another_workspaces_node_app_and_cvm_are_404(world: PlaneWorld, base_url: str, app: AppAuth) -> None:
    add_node(world, "prod5", PROD5)
    register(world, app)
    world.fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod5")
    _, beta_token = world.fleet.create_workspace("beta")
    beta = world.client(base_url, beta_token)
    assert beta.get("/api/nodes").json() == {"nodes": [], "next_cursor": None}
    for path in ("/api/nodes/prod5", "/api/nodes/prod5/history", f"/api/apps/{app.address}",
                 f"/api/apps/{app.address}/device-allowlist", "/api/cvms/shared-key-demo-1"):  # fmt: skip
        answer = beta.get(path)
        assert answer.status_code == 404, path
        assert "0x0505" not in answer.text  # nothing about the node leaks
    refused = beta.post("/api/nodes", json={"name": "prod5"})
    assert refused.status_code == 409
    assert beta.get("/api/nodes").json() == {"nodes": [], "next_cursor": None}


def test_node_quote_records_device_id_and_a_drift_flags_the_cvm(
    world: PlaneWorld, base_url: str, tmp_path: Path, chain: Chain, owner: Signer, kms: KmsRegistry,
    pki: MockIntelPki,
) -> None:  # fmt: skip
    api = world.client(base_url)
    node = SimNode.load_or_create(tmp_path / "prod6", "prod6", "eu-west")
    assert api.post("/api/nodes", json={"name": "prod6", "region": "eu-west"}).status_code == 201
    first = api.post("/api/nodes/prod6/attestation", json={"quote": node.host_quote(pki).hex()}).json()
    assert first["device_id"] == hex0x(node.device_id) and first["changed"] is True

    app = deploy_app(chain, owner, kms, device_id=node.device_id)
    register(world, app)
    api.post("/api/cvms", json={"name": "shared-key-demo-2", "app": app.address, "node": "prod6", "status": "running"})
    assert _statuses(api, app) == {hex0x(node.device_id): "allowed"}

    old = node.device_id
    node.rotate_ppid()  # BIOS update
    drift = api.post("/api/nodes/prod6/attestation", json={"quote": node.host_quote(pki).hex()}).json()
    assert drift == {
        "node": "prod6", "device_id": hex0x(node.device_id), "old_device_id": hex0x(old), "changed": True,
        "flagged_cvms": ["shared-key-demo-2"],
    }  # fmt: skip
    history = api.get("/api/nodes/prod6").json()["history"]
    assert [(h["old_device_id"], h["device_id"]) for h in history] == [
        (None, hex0x(old)),
        (hex0x(old), hex0x(node.device_id)),
    ]
    cvm = api.get("/api/cvms/shared-key-demo-2").json()
    assert cvm["device_allowed"] is False and "does not allow" in cvm["status_reason"]

    view = api.get(f"/api/apps/{app.address}/device-allowlist").json()
    assert view["warning"] is True
    assert _statuses(api, app) == {hex0x(node.device_id): "deployed-not-allowed", hex0x(old): "allowed"}

    send(chain, owner, app.add_device(node.device_id))
    fixed = api.get(f"/api/apps/{app.address}/device-allowlist").json()
    assert fixed["warning"] is False
    assert _statuses(api, app)[hex0x(node.device_id)] == "allowed"


def test_a_quote_that_does_not_verify_changes_nothing(world: PlaneWorld, base_url: str, tmp_path: Path,
                                                      pki: MockIntelPki) -> None:  # fmt: skip
    api = world.client(base_url)
    node = SimNode.load_or_create(tmp_path / "prod9", "prod9", "us")
    api.post("/api/nodes", json={"name": "prod9"})
    quote = bytearray(node.host_quote(pki))
    quote[100] ^= 1
    answer = api.post("/api/nodes/prod9/attestation", json={"quote": quote.hex()})
    assert answer.status_code == 400 and "does not verify" in answer.json()["detail"]
    assert api.get("/api/nodes/prod9").json()["device_id"] is None
    assert api.post("/api/nodes/prod9/attestation", json={"quote": "zz"}).status_code == 400
    assert api.post("/api/nodes/nope/attestation", json={"quote": node.host_quote(pki).hex()}).status_code == 404


def test_merged_allowlist_has_every_status_and_the_allow_any_flag(
    world: PlaneWorld, base_url: str, app: AppAuth, chain: Chain, owner: Signer
) -> None:
    api = world.client(base_url)
    add_node(world, "prod5", PROD5)
    add_node(world, "prod6", bytes([6]) * 32, region="eu-west")
    add_node(world, "prod9", PROD9)
    register(world, app)
    for name, node in (("shared-key-demo-1", "prod5"), ("shared-key-demo-2", "prod6")):
        api.post("/api/cvms", json={"name": name, "app": "shared-key-demo", "node": node, "status": "running"})
    view = api.get("/api/apps/shared-key-demo/device-allowlist").json()
    rows = {r["node"]: r for r in view["devices"]}
    assert rows["prod5"]["status"] == "allowed" and rows["prod5"]["cvms"] == ["shared-key-demo-1"]
    assert rows["prod6"]["status"] == "deployed-not-allowed" and rows["prod6"]["region"] == "eu-west"
    assert rows["prod9"]["status"] == "known-not-deployed" and rows["prod9"]["deployable"] is True
    assert view["devices"][0]["node"] == "prod6"  # what needs attention comes first
    assert view["warning"] is True and view["allow_any_device"] is False
    by_cvm = api.get("/api/apps/shared-key-demo-2/device-allowlist").json()  # a CVM's name stands for its app
    assert by_cvm["app"] == app.address and by_cvm["devices"] == view["devices"]

    send(chain, owner, app.set_allow_any_device(True))
    relaxed = api.get(f"/api/apps/{app.address.lower()}/device-allowlist").json()
    assert relaxed["allow_any_device"] is True and relaxed["warning"] is False


def test_cvm_lookup_by_name_uuid_or_instance_id(world: PlaneWorld, base_url: str, app: AppAuth) -> None:
    api = world.client(base_url)
    add_node(world, "hosted", bytes([7]) * 32)
    register(world, app)
    created = api.post("/api/cvms", json={"name": "shared-key-demo-selfhost", "app": app.address, "node": "hosted",
                                          "instance_id": "0x" + "ab" * 20}).json()  # fmt: skip
    for key in ("shared-key-demo-selfhost", created["uuid"], "ab" * 20, "0x" + "ab" * 20):
        assert api.get(f"/api/cvms/{key}").json()["app"] == app.address
    assert api.get("/api/cvms/unknown").status_code == 404
    bad = api.post("/api/cvms", json={"name": "x", "app": app.address, "node": "hosted", "compose_hash": "12"})
    assert bad.status_code == 400 and "compose hash" in bad.json()["detail"]
    assert [c["name"] for c in api.get("/api/cvms").json()["cvms"]] == ["shared-key-demo-selfhost"]


def test_app_history_is_the_chains_audit_trail(world: PlaneWorld, base_url: str, app: AppAuth, chain: Chain,
                                               owner: Signer) -> None:  # fmt: skip
    add_node(world, "prod5", PROD5)
    register(world, app)
    send(chain, owner, app.add_device(PROD9))
    send(chain, owner, app.remove_device(PROD5))
    events = world.client(base_url).get(f"/api/apps/{app.address}/history").json()["events"]
    assert [(e["event"], e["device_id"], e["node"]) for e in events] == [
        ("DeviceAdded", hex0x(PROD5), "prod5"),
        ("DeviceAdded", hex0x(PROD9), None),
        ("DeviceRemoved", hex0x(PROD5), "prod5"),
    ]


def test_answers_are_the_views_json_byte_for_byte(world: PlaneWorld, base_url: str, app: AppAuth, chain: Chain,
                                                  owner: Signer) -> None:  # fmt: skip
    """The response models change no byte of what the API answered before them: each view's `as_json()`
    as Starlette's JSONResponse writes it (field order, null fields, 0x-lowercase hex, EIP-55, UTF-8)."""
    api = world.client(base_url)
    fleet, workspace, plane = world.fleet, world.workspace, world.plane
    add_node(world, "prod5", PROD5, region="eu-zürich")
    register(world, app)
    send(chain, owner, app.add_device(PROD9))
    body = {"name": "shared-key-demo-1", "app": app.address.lower(), "node": "prod5", "instance_id": "AB" * 20,
            "compose_hash": "0x" + "CD" * 32}  # fmt: skip
    created = api.post("/api/cvms", json=body)
    assert created.status_code == 201
    assert created.content == _compact(fleet.find_cvm(workspace, "shared-key-demo-1").as_json())
    history = [h.as_json() for h in fleet.node_history(workspace, "prod5")]
    expected: dict[str, Any] = {
        "/api/workspace": {"workspace": "acme"},
        "/api/nodes": {"nodes": [n.as_json() for n in fleet.nodes(workspace)], "next_cursor": None},
        "/api/nodes/prod5": fleet.node(workspace, "prod5").as_json() | {"history": history},
        "/api/nodes/prod5/history": {"node": "prod5", "history": history},
        "/api/apps": {"apps": [a.as_json() for a in fleet.apps(workspace)], "next_cursor": None},
        f"/api/apps/{app.address}": fleet.app(workspace, app.address).as_json(),
        f"/api/apps/{app.address}/device-allowlist": plane.device_allowlist(workspace, app.address).as_json()
        | {"next_cursor": None},
        f"/api/apps/{app.address}/history": {
            "app": app.address,
            "events": plane.app_history(workspace, app.address),
            "next_cursor": None,
        },
        "/api/cvms": {"cvms": [c.as_json() for c in fleet.cvms(workspace)], "next_cursor": None},
        "/api/cvms/shared-key-demo-1": fleet.find_cvm(workspace, "shared-key-demo-1").as_json(),
    }
    for path, view in expected.items():
        answer = api.get(path)
        assert answer.status_code == 200, path
        assert answer.content == _compact(view), path
    assert "zürich".encode() in api.get("/api/nodes").content


def test_each_error_answers_the_status_warden_errors_gives_it(world: PlaneWorld, base_url: str, app: AppAuth) -> None:
    """400 bad input, 404 unknown, 409 taken, 503 a chain that cannot be read; always `{"detail": …}`."""
    api = world.client(base_url)
    add_node(world, "prod5", PROD5)
    world.fleet.register_app(world.workspace, app.address, chain_id=999, name="elsewhere")  # no RPC serves 999
    world.fleet.add_node("taken")  # exists, but this workspace may not deploy to it
    cvm = {"name": "x", "app": "elsewhere", "node": "prod5"}
    answers = [
        (api.post("/api/cvms", json=cvm | {"compose_hash": "12"}), 400, "invalid compose hash '12'"),
        (api.post("/api/nodes/prod5/attestation", json={"quote": "zz"}), 400, "quote"),
        (api.get("/api/nodes/prod7"), 404, "unknown node 'prod7'"),
        (api.post("/api/cvms", json=cvm | {"app": "nope"}), 404, "nope"),
        (api.post("/api/cvms", json=cvm | {"node": "taken"}), 404, "unknown node 'taken'"),
        (api.post("/api/nodes", json={"name": "taken"}), 409, "node 'taken' exists and belongs to another workspace"),
        (api.get("/api/apps/elsewhere/device-allowlist"), 503, "no RPC URL configured for chain 999"),
        (api.get("/api/apps/elsewhere/history"), 503, "no RPC URL configured for chain 999"),
    ]
    for answer, status, words in answers:
        assert answer.status_code == status, answer.text
        assert list(answer.json()) == ["detail"] and words in answer.json()["detail"], answer.text
    assert api.get("/api/cvms").json() == {"cvms": [], "next_cursor": None}  # nothing was placed


def _compact(view: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it."""
    return json.dumps(view, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _statuses(api: httpx.Client, app: AppAuth) -> dict[str, str]:
    view = api.get(f"/api/apps/{app.address}/device-allowlist").json()
    return {r["device_id"]: r["status"] for r in view["devices"]}


def _every_page(api: httpx.Client, path: str, field: str, limit: int, **query: str) -> tuple[list[Any], list[int]]:
    """Every item of a list, following `next_cursor`; and how many items each page held."""
    items: list[Any] = []
    sizes: list[int] = []
    params: dict[str, Any] = {"limit": limit, **query}
    while True:
        answer = api.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert list(body) == [field, "next_cursor"]
        items += body[field]
        sizes.append(len(body[field]))
        if body["next_cursor"] is None:
            return items, sizes
        params["cursor"] = body["next_cursor"]


def test_lists_page_through_250_items_each_exactly_once_in_order(world: PlaneWorld, base_url: str) -> None:
    """Nodes and CVMs by name, apps by registration, 100 a page; the default page is 100 too."""
    api = world.client(base_url)
    names = [f"node-{i:03d}" for i in range(250)]
    for name in reversed(names):  # inserted out of order: the order is the key's
        world.fleet.add_node(name)
        world.fleet.grant(world.workspace, name)
    world.fleet.add_node("hidden")  # another workspace's node is on no page
    addresses = ["0x" + f"{i + 1:040x}" for i in range(250)]
    apps = [world.fleet.register_app(world.workspace, a, chain_id=31337, name=f"app-{i}").address
            for i, a in enumerate(addresses)]  # fmt: skip
    cvm_names = [f"cvm-{i:03d}" for i in range(250)]
    for i, name in enumerate(reversed(cvm_names)):
        world.fleet.add_cvm(world.workspace, name, app=apps[i % 2], node=names[i])

    nodes, sizes = _every_page(api, "/api/nodes", "nodes", 100)
    assert [n["name"] for n in nodes] == names and sizes == [100, 100, 50]
    listed_apps, sizes = _every_page(api, "/api/apps", "apps", 100)
    assert [a["app"] for a in listed_apps] == apps and sizes == [100, 100, 50]
    cvms, sizes = _every_page(api, "/api/cvms", "cvms", 100)
    assert [c["name"] for c in cvms] == cvm_names and sizes == [100, 100, 50]
    of_one_app, _ = _every_page(api, "/api/cvms", "cvms", 100, app="app-0")
    assert [c["name"] for c in of_one_app] == [c["name"] for c in cvms if c["app"] == apps[0]]
    assert len(of_one_app) == 125

    first = api.get("/api/nodes").json()  # no limit: a page of 100
    assert [n["name"] for n in first["nodes"]] == names[:100] and first["next_cursor"] is not None
    whole = api.get("/api/nodes", params={"limit": 1000}).json()
    assert [n["name"] for n in whole["nodes"]] == names and whole["next_cursor"] is None
    exact = api.get("/api/cvms", params={"limit": 250}).json()  # exactly one page: no empty page after it
    assert len(exact["cvms"]) == 250 and exact["next_cursor"] is None


def test_a_bad_limit_or_cursor_is_400_and_says_what_to_pass(world: PlaneWorld, base_url: str) -> None:
    api = world.client(base_url)
    add_node(world, "prod5", PROD5)
    add_node(world, "prod6", bytes([6]) * 32)
    cursor = api.get("/api/nodes", params={"limit": 1}).json()["next_cursor"]
    app_cursor = "MTA"  # the cursor after the app in row 10: this workspace has none there
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("/api/nodes", {"limit": 0}, "invalid limit 0: expected 1 to 1,000 items per page"),
        ("/api/cvms", {"limit": -5}, "invalid limit -5: expected 1 to 1,000 items per page"),
        ("/api/apps", {"limit": 1001}, "invalid limit 1001: expected 1 to 1,000 items per page"),
        ("/api/nodes", {"cursor": "not a cursor!"}, "invalid cursor 'not a cursor!'"),
        ("/api/cvms", {"cursor": cursor + "="}, "invalid cursor"),
        ("/api/nodes", {"cursor": ""}, "invalid cursor ''"),
        ("/api/apps", {"cursor": cursor}, "invalid cursor: pass the `next_cursor` of the previous page"),
    ]
    for path, params, words in bad:
        answer = api.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
        assert list(answer.json()) == ["detail"] and words in answer.json()["detail"], answer.text
    assert api.get("/api/apps", params={"cursor": app_cursor}).json() == {"apps": [], "next_cursor": None}
    second = api.get("/api/nodes", params={"limit": 1, "cursor": cursor}).json()
    assert [n["name"] for n in second["nodes"]] == ["prod6"] and second["next_cursor"] is None
