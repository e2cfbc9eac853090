"""`warden plan` / `warden apply` against a fresh anvil: each policy form, drift, pruning, idempotence, and
every bad input refused with exit 2 before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.chain import deploy_app, send
from tests.support.cli import Run, assert_clean_error, ok, warden
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.safe import batch_checksum
from warden.chain.signer import Signer
from warden.compose.hashing import compose_hash
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil
from warden.errors import EXIT_CHANGES_PENDING

A, B, C, D = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3, 0xD4))
H1, H2 = bytes([0x11]) * 32, bytes([0x22]) * 32
IMAGE = bytes([0x5E]) * 32


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """An app with device A and compose hash H1 set by its initializer."""
    return deploy_app(chain, owner, kms, device_id=A, compose_hash=H1)


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    """prod5 = A; prod6 moved from C to B (a firmware update); two nodes called edge."""
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps([
        {"name": "prod5", "device_id": hex0x(A)},
        {"name": "prod6", "device_id": hex0x(B), "former_device_ids": [hex0x(C)]},
        {"name": "edge", "device_id": hex0x(D), "region": "eu"},
        {"name": "edge", "device_id": "ee" * 32, "region": "us"},
    ]))  # fmt: skip
    return path


def env(anvil: Anvil, nodes: Path | None = None) -> dict[str, str]:
    extra = {"WARDEN_NODES_FILE": str(nodes)} if nodes else {}
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": DEV_PRIVATE_KEY, **extra}


def policy(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def changes(data: dict[str, object]) -> list[tuple[str, str, object]]:
    rows = []
    for section in data["sections"]:  # type: ignore[attr-defined]
        for c in section["changes"]:
            value = next(c[k] for k in ("device_id", "compose_hash", "os_image_hash", "allow_any_device") if k in c)
            rows.append((section["name"], c["change"], value))
    return rows


def plan(path: Path, environment: dict[str, str], *extra: str) -> Run:
    return warden("plan", str(path), "--json", *extra, env=environment)


def test_plan_apply_then_in_sync(anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes: Path,
                                 tmp_path: Path) -> None:  # fmt: skip
    path = policy(
        tmp_path,
        f"""
[apps.demo]
address = "{app.address.lower()}"
allow_any_device = false
devices = ["prod5", "prod6"]
compose_hashes = ["{H1.hex()}", "{hex0x(H2)}"]
""",
    )
    nonce = chain.nonce(owner.address)
    first = plan(path, env(anvil, nodes))
    assert first.exit_code == EXIT_CHANGES_PENDING, first.stderr
    data = first.json()
    assert data["in_sync"] is False and data["summary"] == {"add": 2, "remove": 0, "set": 0, "not_named": 0}
    assert changes(data) == [("demo", "add-device", hex0x(B)), ("demo", "add-compose-hash", hex0x(H2))]
    (section,) = data["sections"]
    assert section["changes"][0]["node"] == "prod6" and section["contract"] == app.address
    assert chain.nonce(owner.address) == nonce  # plan sends nothing

    applied = ok(warden("apply", str(path), "--wait", "--json", env=env(anvil, nodes)))
    assert [(r["change"], r["status"]) for r in applied["results"]] == [("add-device", "added"),
                                                                        ("add-compose-hash", "added")]  # fmt: skip
    assert app.is_device_allowed(B) and app.is_compose_hash_allowed(H2)
    assert chain.nonce(owner.address) == nonce + 2

    again = ok(warden("apply", str(path), "--wait", "--json", env=env(anvil, nodes)))
    assert again["results"] == [] and again["in_sync"] is True
    assert chain.nonce(owner.address) == nonce + 2  # a second apply sends nothing
    synced = plan(path, env(anvil, nodes))
    assert synced.exit_code == 0 and synced.json()["in_sync"] is True


def test_drifted_node_and_unnamed_entries_are_shown_and_pruned_only_when_asked(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, nodes: Path, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, device_id=C)  # prod6's former id
    send(chain, owner, app.add_device(A))
    path = policy(tmp_path, f'[apps.demo]\naddress = "{app.address}"\ndevices = ["prod5", "prod6"]\n')
    run = warden("plan", str(path), env=env(anvil, nodes))
    assert run.exit_code == EXIT_CHANGES_PENDING
    assert f"+ add device {hex0x(B)} (prod6)" in run.stdout
    assert f"device {hex0x(C)} (prod6 (former id)) is on chain but not in the policy" in run.stdout
    assert app.is_device_allowed(C)

    pruned = plan(path, env(anvil, nodes), "--prune").json()
    assert changes(pruned) == [("demo", "add-device", hex0x(B)), ("demo", "remove-device", hex0x(C))]
    ok(warden("apply", str(path), "--prune", "--wait", "--json", env=env(anvil, nodes)))
    assert (app.is_device_allowed(A), app.is_device_allowed(B), app.is_device_allowed(C)) == (True, True, False)
    assert plan(path, env(anvil, nodes), "--prune").exit_code == 0


def test_compose_hashes_from_a_manifest_and_a_matrix_relative_to_the_policy(
    anvil: Anvil, app: AppAuth, tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    releases.mkdir()
    manifest = b'{"manifest_version":2,"name":"demo","runner":"docker-compose"}'
    (releases / "app-compose.json").write_bytes(manifest)
    matrix = [{"platform": "phala-cloud", "compose_hash": hex0x(H2)}, {"platform": "self-hosted",
              "compose_hash": hex0x(H1)}]  # fmt: skip
    (releases / "v2.json").write_text(json.dumps({"rows": matrix}))
    path = policy(
        tmp_path,
        f"""
[apps.demo]
app_id = "app_{app.address[2:].lower()}"
compose_hashes = ["releases/app-compose.json", "releases/v2.json"]
""",
    )
    data = plan(path, env(anvil)).json()
    assert changes(data) == [("demo", "add-compose-hash", hex0x(compose_hash(manifest))),
                             ("demo", "add-compose-hash", hex0x(H2))]  # fmt: skip
    sources = [c["source"] for c in data["sections"][0]["changes"]]
    assert sources == ["releases/app-compose.json", "releases/v2.json:phala-cloud"]


def test_allow_any_device_and_kms_os_images(anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry,
                                            app: AppAuth, tmp_path: Path) -> None:  # fmt: skip
    send(chain, owner, app.set_allow_any_device(True))
    path = policy(
        tmp_path,
        f"""
[apps.demo]
address = "{app.address}"
allow_any_device = false

[kms]
address = "{kms.address}"
os_images = ["{hex0x(IMAGE)}"]
""",
    )
    data = plan(path, env(anvil)).json()
    assert changes(data) == [("demo", "set-allow-any-device", False), ("kms", "add-os-image", hex0x(IMAGE))]
    ok(warden("apply", str(path), "--wait", "--json", env=env(anvil)))
    assert not app.allow_any_device() and kms.is_os_image_allowed(IMAGE)
    assert plan(path, env(anvil)).exit_code == 0


def test_markdown_plan_for_a_pull_request(anvil: Anvil, app: AppAuth, nodes: Path, tmp_path: Path) -> None:
    path = policy(tmp_path, f'[apps.demo]\naddress = "{app.address}"\ndevices = ["prod6"]\n')
    run = warden("plan", str(path), "--markdown", env=env(anvil, nodes))
    assert run.exit_code == EXIT_CHANGES_PENDING
    assert "**1** to add, **0** to remove" in run.stdout
    assert f"| add-device | `{hex0x(B)}` | prod6 | named in the policy |" in run.stdout
    assert f"| not in policy (device) | `{hex0x(A)}` | prod5 |" in run.stdout


def test_apply_for_a_safe_owner_writes_one_batch_and_sends_nothing(
    anvil: Anvil, chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, owner=third.address, device_id=A)
    path = policy(tmp_path, f'[apps.demo]\naddress = "{app.address}"\ndevices = ["{hex0x(A)}", "{hex0x(B)}"]\n'
                  f'compose_hashes = ["{hex0x(H2)}"]\n')  # fmt: skip
    nonces = (chain.nonce(owner.address), chain.nonce(third.address))
    batch_file = tmp_path / "batch.json"
    data = ok(warden("apply", str(path), "--safe-batch", str(batch_file), "--json", env=env(anvil)))
    assert data["transactions"] == 2 and [r["status"] for r in data["results"]] == ["pending", "pending"]
    batch = json.loads(batch_file.read_text())
    assert batch["meta"]["createdFromSafeAddress"] == third.address
    assert batch["meta"]["checksum"] == batch_checksum(batch)
    assert len(batch["transactions"]) == 2
    calls = ok(warden("apply", str(path), "--calldata", "--json", env=env(anvil)))["calls"]
    assert [c["call"] for c in calls] == [f"addDevice {hex0x(B)}", f"addComposeHash {hex0x(H2)}"]
    assert (chain.nonce(owner.address), chain.nonce(third.address)) == nonces
    refused = warden("apply", str(path), "--json", env=env(anvil))  # the signer does not own the app
    assert_clean_error(refused, 2, "not the owner")
    assert (chain.nonce(owner.address), chain.nonce(third.address)) == nonces


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ('devices = ["prod7"]', "unknown node 'prod7'"),
        ('devices = ["edge"]', "ambiguous"),
        ('devices = ["0x12zz"]', "device id"),
        ('compose_hashes = ["missing/app-compose.json"]', "neither a 32-byte compose hash nor a readable file"),
        ('compose_hashes = ["0x1234"]', "neither a 32-byte compose hash nor a readable file"),
        ("devices = 3", "devices must be a list of strings"),
        ("allow_any_device = 'no'", "allow_any_device must be true or false"),
        ("colour = 'blue'", "unknown setting(s) colour"),
    ],
)
def test_bad_policy_entries_are_refused_before_anything_is_sent(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes: Path, tmp_path: Path, body: str, phrase: str
) -> None:
    path = policy(tmp_path, f'[apps.demo]\naddress = "{app.address}"\n{body}\n')
    nonce = chain.nonce(owner.address)
    for command in ("plan", "apply"):
        assert_clean_error(warden(command, str(path), env=env(anvil, nodes)), 2, phrase)
    assert chain.nonce(owner.address) == nonce


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("[apps.demo\n", "not valid TOML"),
        ("[apps.demo]\naddress = '0x00000000000000000000000000000000000000aa'\ndevices = []\n", "no contract at"),
        ("[apps.demo]\naddress = '0x1234'\n", "address"),
        ("[apps.demo]\naddress = '0x1234'\nname = 'demo'\n", "name the app once"),
        ("[things]\n", "unknown table(s) things"),
        ("", "nothing to plan"),
    ],
)
def test_bad_policy_files_are_refused(anvil: Anvil, tmp_path: Path, text: str, phrase: str) -> None:
    path = policy(tmp_path, text)
    assert_clean_error(warden("plan", str(path), env=env(anvil)), 2, phrase)


def test_an_app_named_without_a_control_plane_is_bad_input(anvil: Anvil, tmp_path: Path) -> None:
    path = policy(tmp_path, "[apps.shared-key-demo]\ndevices = []\n")
    assert_clean_error(warden("plan", str(path), env=env(anvil)), 2, "control plane")


def test_a_missing_policy_file_is_bad_input(anvil: Anvil, tmp_path: Path) -> None:
    assert_clean_error(warden("plan", str(tmp_path / "nope.toml"), env=env(anvil)), 2, "cannot read policy")
