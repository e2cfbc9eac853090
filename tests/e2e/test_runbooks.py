"""The runbooks of docs/ (the seeds' scenarios), walked through the CLI on one real devnet.

One `warden devnet up` for the module: anvil, DstackKms + `shared-key-demo`, the KMS, the auth webhook,
the control plane and the demo fleet (prod5, prod6, prod9, hosted; three CVMs). Each test is one runbook
and leaves the fleet as it found it in the way that matters to the others: every demo CVM boots, the KMS
acts as 0.5.7. The Safe-owned app runbook is tests/e2e/test_safe_owned_app.py.
"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct

from tests.e2e.devnet_runbook import DEMO_APP, DEMO_CVMS, DEMO_NODES, Devnet
from tests.support.cli import Run, assert_clean_error
from warden.devnet.fleet import DEMO_DOCKER_COMPOSE

RELEASE_2 = DEMO_DOCKER_COMPOSE.replace("shared-key-demo:1.0", "shared-key-demo:2.0")


def assert_refused_boot(run: Run, reason: str) -> None:
    """A refused `devnet cvm boot`: exit 1, its report on stdout, `error: …` with the KMS's reason on stderr."""
    assert run.exit_code == 1, (run.stdout, run.stderr)
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr, run.stderr
    assert reason in run.stderr, (reason, run.stderr)


def test_recover_from_a_hardware_upgrade(devnet: Devnet) -> None:
    """docs/recover-from-hardware-upgrade.md: prod6's firmware update strands shared-key-demo-2 until its new
    device id is allowed (APP given as the CVM's name); the old id is then removed; the trail keeps both."""
    old = devnet.device_of("prod6")
    assert devnet.allowed_devices()[old] == "prod6"

    update = devnet.run("devnet", "node", "update-firmware", "prod6")
    assert update.exit_code == 0, update.stderr
    new = devnet.device_of("prod6")
    assert new != old
    assert f"prod6: device_id {old} -> {new}" in update.stdout
    assert "shared-key-demo-2: its app does not allow the new device id" in update.stdout
    assert f"fix: warden allow-devices add {devnet.app} prod6 --wait" in update.stdout

    refused = devnet.run("devnet", "cvm", "reboot", "shared-key-demo-2")
    assert_refused_boot(refused, "Boot denied: Device not allowed")
    assert "app keys: refused" in refused.stdout
    assert devnet.cvm_rows()["shared-key-demo-2"]["status"] == "boot-failed"

    # the dashboard's Device Allowlist panel: prod6's new id is deployed but not allowed, and it warns
    panel = devnet.api(f"/api/apps/{devnet.app}/device-allowlist")
    assert panel["warning"] is True
    rows = {row["device_id"]: row for row in panel["devices"]}
    assert rows[new]["status"] == "deployed-not-allowed"
    assert (rows[new]["node"], rows[new]["cvms"]) == ("prod6", ["shared-key-demo-2"])
    assert rows[old]["allowed"] is True and rows[old]["deployed"] is False
    assert (rows[old]["node"], rows[old]["former_node"]) == (None, "prod6")

    # APP given as the CVM's name (resolved by the control plane), the device as the node's name
    added = devnet.run("allow-devices", "add", "shared-key-demo-2", "prod6", "--wait", "--json")
    assert added.exit_code == 0, added.stderr
    assert f"CVM shared-key-demo-2 (node prod6) runs app {devnet.app}" in added.stderr
    (row,) = added.json()["results"]
    assert (row["device_id"], row["node"], row["status"]) == (new, "prod6", "added")
    assert devnet.api(f"/api/apps/{devnet.app}/device-allowlist")["warning"] is False

    rebooted = devnet.ok("devnet", "cvm", "reboot", "shared-key-demo-2")
    assert (rebooted["booted"], rebooted["device_id"]) == (True, new)
    assert devnet.cvm_rows()["shared-key-demo-2"]["status"] == "running"

    # the old id is still allowed, and named as prod6's former identity so it is clear which one to remove
    listed = {d["device_id"]: d for d in devnet.ok("allow-devices", "list", devnet.app)["devices"]}
    assert (listed[old]["node"], listed[old]["former_node"]) == (None, "prod6")
    assert "prod6 (former id)" in devnet.run("allow-devices", "list", devnet.app).stdout
    removed = devnet.ok("allow-devices", "remove", devnet.app, old, "--wait")
    assert [(r["device_id"], r["status"]) for r in removed["results"]] == [(old, "removed")]
    allowed = devnet.allowed_devices()
    assert old not in allowed and allowed[new] == "prod6"

    node = devnet.ok("nodes", "show", "prod6")
    assert [(h["old_device_id"], h["device_id"]) for h in node["history"]] == [(None, old), (old, new)]

    trail = devnet.ok("allow-devices", "history", "shared-key-demo-2")["events"]
    assert [(e["event"], e["device_id"]) for e in trail[-2:]] == [("DeviceAdded", new), ("DeviceRemoved", old)]
    assert trail[-2]["tx"] == row["tx"] and trail[-1]["tx"] == removed["results"][0]["tx"]
    assert ("DeviceAdded", old) in [(e["event"], e["device_id"]) for e in trail[:-2]]  # added at deploy time


def test_replicate_to_a_new_node(devnet: Devnet) -> None:
    """docs/replicate-to-a-new-node.md: a replica on prod9 is refused with the fix and nothing
    changed, until prod9's device is allowed; then it is placed."""
    prod9 = devnet.device_of("prod9")
    assert prod9 not in devnet.allowed_devices()
    sent, cvms = devnet.sent_by_owner(), set(devnet.cvm_rows())

    refused = devnet.run("cvms", "replicate", "shared-key-demo-1", "--node", "prod9")
    assert_clean_error(refused, 1, "a replica of shared-key-demo-1 on prod9 would be refused; nothing was changed",
                       f"prod9 ({prod9}) is NOT allowed",
                       f"fix: warden allow-devices add {devnet.app} prod9 --wait")  # fmt: skip
    as_json = devnet.run("cvms", "replicate", "shared-key-demo-1", "--node", "prod9", "--json")
    assert as_json.exit_code == 1
    assert (as_json.json()["replicated"], as_json.json()["cvm"]) == (False, None)
    device_check = next(c for c in as_json.json()["checks"] if c["check"] == "device")
    assert device_check["ok"] is False and "allow-devices add" in device_check["fix"]
    # nothing changed: no transaction, the allowlist and the control plane's CVMs as before
    assert devnet.sent_by_owner() == sent
    assert prod9 not in devnet.allowed_devices()
    assert set(devnet.cvm_rows()) == cvms

    added = devnet.ok("allow-devices", "add", DEMO_APP, "prod9", "--wait")  # APP given as the app's name
    assert [(r["device_id"], r["node"], r["status"]) for r in added["results"]] == [(prod9, "prod9", "added")]

    placed = devnet.ok("cvms", "replicate", "shared-key-demo-1", "--node", "prod9")
    assert placed["replicated"] is True and all(c["ok"] for c in placed["checks"])
    assert (placed["cvm"]["name"], placed["cvm"]["node"]) == ("shared-key-demo-1-prod9", "prod9")
    source = devnet.cvm_rows()["shared-key-demo-1"]
    replica = devnet.cvm_rows()["shared-key-demo-1-prod9"]
    assert (replica["node"], replica["app"], replica["compose_hash"]) == ("prod9", devnet.app, source["compose_hash"])

    # and what the KMS asks the chain for a CVM of this release on prod9 now says yes
    (os_image,) = devnet.ok("kms", "os-image", "list")["os_images"]
    manifest = devnet.home / "cvms" / "shared-key-demo-1" / "app-compose.json"
    verdict = devnet.ok("preflight", devnet.app, "--compose", str(manifest), "--node", "prod9",
                        "--os-image", os_image["os_image_hash"])  # fmt: skip
    assert verdict["allowed"] is True and verdict["device_id"] == prod9
    assert {c["check"]: c["ok"] for c in verdict["checks"]}["DstackKms.isAppAllowed"] is True


def test_one_shared_key_across_three_cvms_on_two_platforms(devnet: Devnet) -> None:
    """docs/shared-key-across-cvms.md: every CVM of the app derives getKey("/shared-demo", "ethereum") alike."""
    message = "hello from shared-key-demo"
    signed = {cvm: devnet.ok("devnet", "cvm", "sign", cvm, message) for cvm in DEMO_CVMS}
    assert len({s["signature"] for s in signed.values()}) == 1
    assert len({s["address"] for s in signed.values()}) == 1
    one = signed["shared-key-demo-selfhost"]
    assert Account.recover_message(encode_defunct(text=message), signature=one["signature"]) == one["address"]
    assert one["address"] not in (devnet.status["owner"], devnet.app)  # a key of the app, not of the operator


def test_one_release_across_three_deploy_paths(devnet: Devnet, tmp_path: Path) -> None:
    """docs/release-a-compose-hash.md: one docker-compose file, three compose hashes; the first
    boot is refused until all three are allowed in one batch; then every CVM boots the release."""
    compose = tmp_path / "docker-compose.yaml"
    compose.write_text(RELEASE_2)
    matrix_run = devnet.run("compose", "matrix", str(compose), "--name", DEMO_APP, "--json")
    assert matrix_run.exit_code == 0, matrix_run.stderr
    release = tmp_path / "release.json"
    release.write_text(matrix_run.stdout)
    rows = {row["platform"]: row for row in matrix_run.json()["rows"]}
    assert set(rows) == {"phala-cli", "phala-api", "selfhost-vmm"}
    hashes = {platform: row["compose_hash"] for platform, row in rows.items()}
    assert len(set(hashes.values())) == 3
    assert len({row["docker_compose_hash"] for row in rows.values()}) == 1
    listed_before = {h["compose_hash"] for h in devnet.ok("compose-hashes", "list", devnet.app)["compose_hashes"]}
    assert not set(hashes.values()) & listed_before

    first = devnet.run("devnet", "cvm", "boot", "shared-key-demo-1", "--docker-compose", str(compose))
    assert_refused_boot(first, "Boot denied: Compose hash not allowed")
    assert f"compose {hashes['phala-cli']}" in first.stdout and "app keys: refused" in first.stdout

    added = devnet.ok("compose-hashes", "add", "shared-key-demo-1", str(release), "--wait")
    assert [(r["compose_hash"], r["status"], r["source"]) for r in added["results"]] == [
        (hashes[p], "added", f"{release}:{p}") for p in ("phala-cli", "phala-api", "selfhost-vmm")
    ]
    nonces = [devnet.tx_nonce(r["tx"]) for r in added["results"]]
    assert nonces == list(range(nonces[0], nonces[0] + 3))
    listed = {h["compose_hash"] for h in devnet.ok("compose-hashes", "list", devnet.app)["compose_hashes"]}
    assert set(hashes.values()) <= listed

    for cvm, (node, platform) in DEMO_CVMS.items():
        booted = devnet.ok("devnet", "cvm", "boot", cvm, "--docker-compose", str(compose))
        assert (booted["booted"], booted["node"], booted["compose_hash"]) == (True, node, hashes[platform])
    shown = devnet.cvm_rows()
    for cvm, (_, platform) in DEMO_CVMS.items():
        assert (shown[cvm]["status"], shown[cvm]["compose_hash"]) == ("running", hashes[platform])


def test_new_guest_in_front_of_an_old_kms(devnet: Devnet) -> None:
    """docs/new-guest-old-kms.md: a 0.5.7 guest (gateway enabled) and a 0.5.4 KMS: keys yes, gateway
    certificate "Unsupported API version: 2" (and preflight says so first); with the CSR v1 fallback both."""
    cvm = "shared-key-demo-1"
    assert devnet.ok("devnet", "kms", "--version", "0.5.4")["csr_api_versions"] == [1]
    try:
        half = devnet.run("devnet", "cvm", "reboot", cvm, "--json")
        assert half.exit_code == 1
        assert "got its keys but no gateway certificate: Unsupported API version: 2" in half.stderr
        assert "--fallback-to-v1" in half.stderr
        report = half.json()
        assert (report["guest_version"], report["kms_version"]) == ("0.5.7", "0.5.4")
        assert (report["keys"], report["gateway_certificate"], report["booted"]) == (True, False, False)
        assert report["certificate_error"] == "Unsupported API version: 2"
        assert devnet.cvm_rows()[cvm]["status_reason"] == "no gateway certificate: Unsupported API version: 2"

        # the same verdict before a deploy, from the manifest and the KMS's own answer
        manifest = devnet.home / "cvms" / cvm / "app-compose.json"
        check = devnet.run("preflight", devnet.app, "--compose", str(manifest), "--kms-url", devnet.status["kms_url"],
                           "--guest-version", "0.5.7", "--json")  # fmt: skip
        assert check.exit_code == 1 and check.json()["allowed"] is False
        certificate = next(c for c in check.json()["checks"] if c["check"] == "certificate")
        assert certificate["ok"] is False and "falls back to CSR v1" in certificate["fix"]

        fallback = devnet.ok("devnet", "cvm", "reboot", cvm, "--fallback-to-v1")
        assert (fallback["booted"], fallback["gateway_certificate"], fallback["csr_api_version"]) == (True, True, 1)

        # the self-hosted CVM's manifest disables the gateway: it asks for no certificate, so the old KMS is fine
        selfhost = devnet.ok("devnet", "cvm", "reboot", "shared-key-demo-selfhost")
        assert (selfhost["booted"], selfhost["gateway"], selfhost["gateway_certificate"]) == (True, False, False)
    finally:
        assert devnet.ok("devnet", "kms", "--version", "0.5.7")["csr_api_versions"] == [1, 2]
    upgraded = devnet.ok("devnet", "cvm", "reboot", cvm, "--no-fallback-to-v1")
    assert (upgraded["booted"], upgraded["kms_version"], upgraded["csr_api_version"]) == (True, "0.5.7", 2)


def test_restart_keeps_the_chain_the_inventory_and_the_node_identities(devnet: Devnet) -> None:
    """`warden devnet down` + `up`: same contracts, same allowlist (the runbooks' changes included), same
    node identities (prod6's device id after its firmware update), and the demo CVMs boot again."""
    app, allowed = devnet.app, devnet.allowed_devices()
    trail = devnet.ok("allow-devices", "history", devnet.app)["events"]
    identities = {n: devnet.ok("nodes", "show", n) for n in DEMO_NODES}

    assert devnet.down().returncode == 0
    stopped = devnet.shell("devnet", "status", "--json")
    assert stopped.returncode == 1 and '"running": false' in stopped.stdout

    started = devnet.up()
    assert "(contracts restored)" in started.stderr
    status = devnet.ok("devnet", "status")
    assert status["running"] is True and status["apps"] == {DEMO_APP: app}
    assert status["nodes"] == DEMO_NODES
    assert [(c["name"], c["node"], c["status"]) for c in status["cvms"]] == [
        (cvm, node, "running") for cvm, (node, _) in DEMO_CVMS.items()
    ]
    assert devnet.allowed_devices() == allowed
    assert devnet.ok("allow-devices", "history", devnet.app)["events"] == trail
    for name, before in identities.items():
        after = devnet.ok("nodes", "show", name)
        assert (after["device_id"], after["ppid"]) == (before["device_id"], before["ppid"]), name
        assert [(h["old_device_id"], h["device_id"]) for h in after["history"]] == [
            (h["old_device_id"], h["device_id"]) for h in before["history"]
        ]
    assert allowed[identities["prod6"]["device_id"]] == "prod6"
