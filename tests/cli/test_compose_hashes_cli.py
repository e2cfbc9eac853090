"""`warden compose-hashes list|add|remove` and `warden preflight` against anvil."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.chain import STRANGER_KEY, deploy_app, send
from tests.support.cli import assert_clean_error, warden
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

MANIFEST = {
    "manifest_version": 2,
    "name": "shared-key-demo",
    "runner": "docker-compose",
    "docker_compose_file": "services:\n  app:\n    image: nginx\n",
    "gateway_enabled": True,
    "kms_enabled": True,
}
OS_IMAGE = "0x" + "14" * 32
DEVICE = "0x" + "5a" * 32


def sdk_bytes() -> bytes:
    """What a dstack SDK producer writes: sorted keys, compact."""
    return json.dumps(MANIFEST, sort_keys=True, separators=(",", ":")).encode()


def vmm_bytes() -> bytes:
    """What the VMM writes from the same manifest: indent 4, insertion order."""
    return json.dumps(MANIFEST, indent=4).encode()


def env(anvil: Anvil, key: str = DEV_PRIVATE_KEY) -> dict[str, str]:
    return {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": key}


def test_add_from_hex_file_and_matrix_then_list_and_remove(anvil: Anvil, chain: Chain, owner: Signer,
                                                           kms: KmsRegistry, tmp_path: Path) -> None:  # fmt: skip
    app = deploy_app(chain, owner, kms)
    manifest = tmp_path / "app-compose.json"
    manifest.write_bytes(sdk_bytes())
    matrix = tmp_path / "matrix.json"
    rows = [{"platform": "a", "compose_hash": "0x" + "a1" * 32}, {"platform": "b", "compose_hash": "0x" + "b2" * 32}]
    matrix.write_text(json.dumps({"rows": rows}))
    run = warden("compose-hashes", "add", app.address, "c3" * 32, str(manifest), str(matrix), "--wait", "--json",
                 env=env(anvil))  # fmt: skip
    assert run.exit_code == 0, run.stderr
    statuses = {r["compose_hash"]: r["status"] for r in run.json()["results"]}
    file_hash = "0x" + hashlib.sha256(sdk_bytes()).hexdigest()
    assert statuses == {"0x" + "c3" * 32: "added", file_hash: "added", "0x" + "a1" * 32: "added",
                        "0x" + "b2" * 32: "added"}  # fmt: skip

    again = warden("compose-hashes", "add", app.address, str(manifest), "--json", env=env(anvil))
    assert again.json()["results"][0]["status"] == "already-allowed"

    listed = warden("compose-hashes", "list", app.address, "--json", env={"ETH_RPC_URL": anvil.url}).json()
    assert {h["compose_hash"] for h in listed["compose_hashes"]} == set(statuses)

    removed = warden("compose-hashes", "remove", app.address, "a1" * 32, "--wait", "--json", env=env(anvil))
    assert removed.json()["results"][0]["status"] == "removed"
    assert not app.is_compose_hash_allowed(bytes.fromhex("a1" * 32))


def test_bad_items_and_non_owner_are_refused(anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry,
                                             stranger: Signer) -> None:  # fmt: skip
    app = deploy_app(chain, owner, kms)
    assert_clean_error(warden("compose-hashes", "add", app.address, "nope", env=env(anvil)), 2, "neither")
    assert_clean_error(warden("compose-hashes", "add", app.address, "ab" * 32, "AB" * 32, env=env(anvil)), 2, "twice")
    nonce = chain.nonce(stranger.address)
    run = warden("compose-hashes", "add", app.address, "ab" * 32, env=env(anvil, STRANGER_KEY))
    assert_clean_error(run, 2, "is not the owner")
    assert chain.nonce(stranger.address) == nonce


def test_preflight_catches_the_wrong_hash_whitelisted_and_gives_the_fix(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    # the release was allowed with the SDK's serialisation, but the VMM will write (and measure) other bytes
    app = deploy_app(chain, owner, kms, device_id=bytes.fromhex(DEVICE[2:]),
                     compose_hash=hashlib.sha256(sdk_bytes()).digest())  # fmt: skip
    send(chain, owner, kms.add_os_image(bytes.fromhex(OS_IMAGE[2:])))
    deployed = tmp_path / "app-compose.json"
    deployed.write_bytes(vmm_bytes())
    args = ["preflight", app.address, "--compose", str(deployed), "--device", DEVICE, "--os-image", OS_IMAGE,
            "--kms", kms.address, "--json"]  # fmt: skip
    run = warden(*args, env={"ETH_RPC_URL": anvil.url})
    assert run.exit_code == 1, run.stderr
    report = run.json()
    assert report["allowed"] is False
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["compose hash"]["ok"] is False
    assert checks["DstackKms.isAppAllowed"]["detail"] == "refused: Compose hash not allowed"
    fix = checks["compose hash"]["fix"]
    assert fix == f"warden compose-hashes add {app.address} {report['compose_hash']} --wait"

    # run the suggested fix, then the same preflight passes
    assert warden(*fix.split()[1:], env=env(anvil)).exit_code == 0
    ok = warden(*args, env={"ETH_RPC_URL": anvil.url})
    assert ok.exit_code == 0, ok.stdout
    assert all(c["ok"] is not False for c in ok.json()["checks"])


def test_preflight_on_a_node_not_allowed_names_the_node_fix(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, compose_hash=hashlib.sha256(sdk_bytes()).digest())
    manifest = tmp_path / "app-compose.json"
    manifest.write_bytes(sdk_bytes())
    nodes = tmp_path / "nodes.json"
    nodes.write_text(json.dumps([{"name": "prod9", "device_id": "9c" * 32}]))
    args = ["preflight", app.address, "--compose", str(manifest), "--node", "prod9", "--nodes-file", str(nodes)]
    run = warden(*args, "--json", env={"ETH_RPC_URL": anvil.url})
    assert run.exit_code == 1
    device = next(c for c in run.json()["checks"] if c["check"] == "device")
    assert device["ok"] is False and f"warden allow-devices add {app.address} prod9 --wait" in device["fix"]
    send(chain, owner, AppAuth(chain, app.address).set_allow_any_device(True))
    # the device is fine now, but with no KMS known registration and the OS image could not be checked
    assert warden(*args, env={"ETH_RPC_URL": anvil.url}).exit_code == 3
    assert warden(*args, "--allow-skipped", env={"ETH_RPC_URL": anvil.url}).exit_code == 0


def test_preflight_without_a_kms_is_undecided_never_a_pass(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    """The CI-against-Base setting: no --kms, no env, no devnet. What could not run is listed, exit 3."""
    app = deploy_app(chain, owner, kms, device_id=bytes.fromhex(DEVICE[2:]),
                     compose_hash=hashlib.sha256(sdk_bytes()).digest())  # fmt: skip
    manifest = tmp_path / "app-compose.json"
    manifest.write_bytes(sdk_bytes())
    args = ["preflight", app.address, "--compose", str(manifest), "--device", DEVICE]
    rpc = {"ETH_RPC_URL": anvil.url}

    run = warden(*args, "--json", env=rpc)
    assert run.exit_code == 3, (run.stdout, run.stderr)
    report = run.json()
    assert (report["decision"], report["allowed"]) == ("undecided", False)
    assert report["skipped"] == ["registered", "os image", "DstackKms.isAppAllowed"]
    checks = {c["name"]: c for c in report["checks"]}
    assert (checks["compose hash"]["status"], checks["device"]["status"]) == ("ok", "ok")
    for name in report["skipped"]:
        assert checks[name]["status"] == "skipped" and checks[name]["ok"] is None
        assert "no DstackKms known" in checks[name]["reason"] and "--kms ADDR" in checks[name]["enable"]
    assert "--os-image HASH" in checks["os image"]["enable"]
    assert "error: undecided: 3 check(s) could not run" in run.stderr and "--allow-skipped" in run.stderr
    assert "Traceback" not in run.stderr

    table = warden(*args, env=rpc)
    assert table.exit_code == 3 and "would be allowed" not in table.stdout
    assert "SKIPPED" in table.stdout and "UNDECIDED" in table.stdout
    assert "registered: no DstackKms known" in table.stderr and "enable with --kms ADDR (or WARDEN_KMS)" in table.stderr

    accepted = warden(*args, "--allow-skipped", "--json", env=rpc)
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.json()["decision"] == "undecided" and accepted.json()["skipped"] == report["skipped"]

    # the KMS known but no OS image: still undecided, and it says which flag is missing
    no_image = warden(*args, "--kms", kms.address, "--json", env=rpc)
    assert no_image.exit_code == 3
    assert no_image.json()["skipped"] == ["os image", "DstackKms.isAppAllowed"]
    assert {c["name"]: c for c in no_image.json()["checks"]}["registered"]["status"] == "ok"
    assert {c["name"]: c.get("enable") for c in no_image.json()["checks"]}["os image"] == "--os-image HASH"

    # everything known: the KMS's own answer decides, as before
    send(chain, owner, kms.add_os_image(bytes.fromhex(OS_IMAGE[2:])))
    full = warden(*args, "--kms", kms.address, "--os-image", OS_IMAGE, "--json", env=rpc)
    assert full.exit_code == 0, full.stderr
    assert (full.json()["decision"], full.json()["allowed"], full.json()["skipped"]) == ("allowed", True, [])
    assert all(c["status"] == "ok" for c in full.json()["checks"])

    # a failed check is a refusal (exit 1) even when others were skipped
    other = tmp_path / "other.json"
    other.write_bytes(vmm_bytes())
    refused = warden("preflight", app.address, "--compose", str(other), "--json", env=rpc)
    assert refused.exit_code == 1 and refused.json()["decision"] == "refused"
    assert "device" in refused.json()["skipped"]


def test_preflight_bad_input(anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path) -> None:
    app = deploy_app(chain, owner, kms)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    env_ = {"ETH_RPC_URL": anvil.url}
    assert_clean_error(
        warden("preflight", app.address, "--compose", str(tmp_path / "none.json"), env=env_), 2, "cannot read"
    )
    assert_clean_error(warden("preflight", app.address, "--compose", str(bad), env=env_), 2)
    good = tmp_path / "good.json"
    good.write_bytes(sdk_bytes())
    both = warden("preflight", app.address, "--compose", str(good), "--node", "a", "--device", DEVICE, env=env_)
    assert_clean_error(both, 2, "at most one")


def test_one_release_on_three_deploy_paths_is_allowed_in_one_batch(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms)
    docker_compose = tmp_path / "docker-compose.yaml"
    docker_compose.write_text(MANIFEST["docker_compose_file"])  # type: ignore[arg-type]
    matrix = warden("compose", "matrix", str(docker_compose), "--name", "shared-key-demo", "--json")
    assert matrix.exit_code == 0, matrix.stderr
    rows = matrix.json()["rows"]
    assert len({r["compose_hash"] for r in rows}) == 3 and len({r["docker_compose_hash"] for r in rows}) == 1
    release = tmp_path / "release.json"
    release.write_text(matrix.stdout)
    run = warden("compose-hashes", "add", app.address, str(release), "--wait", "--json", env=env(anvil))
    assert run.exit_code == 0, run.stderr
    results = run.json()["results"]
    assert [r["status"] for r in results] == ["added"] * 3
    assert all(app.is_compose_hash_allowed(bytes.fromhex(r["compose_hash"][2:])) for r in rows)
    nonces = [int(chain.rpc.call("eth_getTransactionByHash", [r["tx"]])["nonce"], 16) for r in results]
    assert nonces == list(range(nonces[0], nonces[0] + 3))  # one batch, consecutive nonces
