"""`warden preflight --kms-url --guest-version`: a 0.5.7 guest in front of a 0.5.4-style KMS."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import kms_service
from tests.e2e.world import World
from tests.support.chain import send
from tests.support.cli import warden
from tests.support.http_server import serve
from warden.compose.hashing import compose_hash
from warden.kms.server import create_kms_app


def manifest(tmp_path: Path, gateway: bool) -> Path:
    path = tmp_path / f"compose-{gateway}.json"
    path.write_text(json.dumps({"manifest_version": 2, "runner": "docker-compose", "gateway_enabled": gateway}))
    return path


def run(world: World, compose: Path, kms_url: str, guest: str) -> tuple[int, dict[str, dict[str, object]]]:
    args = ["preflight", world.app.address, "--compose", str(compose), "--kms", world.kms.address]
    args += ["--kms-url", kms_url, "--guest-version", guest, "--json"]
    result = warden(*args, env={"ETH_RPC_URL": world.chain.rpc.url})
    return result.exit_code, {c["check"]: c for c in result.json()["checks"]}


def test_new_guest_old_kms_is_flagged_when_the_app_needs_its_certificate(world: World, tmp_path: Path) -> None:
    old = kms_service(world.kms, world.pki, world.service.keys, csr_versions=(1,))
    with serve(create_kms_app(old)) as old_url:
        _, checks = run(world, manifest(tmp_path, gateway=True), old_url, "0.5.7")
        assert checks["kms chain"]["ok"] is True
        assert checks["certificate"]["ok"] is False
        assert "keys work, the gateway certificate does not" in str(checks["certificate"]["detail"])
        _, quiet = run(world, manifest(tmp_path, gateway=False), old_url, "0.5.7")
        assert quiet["certificate"]["ok"] is None  # a warning only: no gateway, no certificate needed
        _, old_guest = run(world, manifest(tmp_path, gateway=True), old_url, "0.5.4")
        assert old_guest["certificate"]["ok"] is True
    _, current = run(world, manifest(tmp_path, gateway=True), world.kms_url, "0.5.7")
    assert current["certificate"]["ok"] is True and current["kms chain"]["ok"] is True


def test_a_kms_of_another_contract_is_flagged(world: World, tmp_path: Path) -> None:
    from warden.chain.deploy import deploy_kms
    from warden.chain.kms import KmsRegistry

    other = KmsRegistry.open(world.chain, deploy_kms(world.chain, world.owner).kms)
    foreign = kms_service(other, world.pki, world.service.keys)
    with serve(create_kms_app(foreign)) as url:
        code, checks = run(world, manifest(tmp_path, gateway=False), url, "0.5.7")
    assert code == 1 and checks["kms chain"]["ok"] is False


def test_only_the_kms_asked_is_undecided_not_a_pass(world: World, tmp_path: Path) -> None:
    """--kms-url and --guest-version alone: the device, OS image and isAppAllowed could not run → exit 3."""
    release = manifest(tmp_path, gateway=True)
    send(world.chain, world.owner, world.app.add_compose_hash(compose_hash(release.read_bytes())))
    code, checks = run(world, release, world.kms_url, "0.5.7")
    assert code == 3, checks
    assert {n for n, c in checks.items() if c["status"] == "skipped"} == {"device", "os image",
                                                                          "DstackKms.isAppAllowed"}  # fmt: skip
    assert checks["certificate"]["status"] == "ok" and checks["kms chain"]["status"] == "ok"
    args = ["preflight", world.app.address, "--compose", str(manifest(tmp_path, gateway=True)),
            "--kms", world.kms.address, "--guest-version", "0.5.7", "--allow-skipped", "--json"]  # fmt: skip
    no_url = warden(*args, env={"ETH_RPC_URL": world.chain.rpc.url})
    assert no_url.exit_code == 0, no_url.stderr  # accepted, but the certificate check is listed as skipped
    certificate = next(c for c in no_url.json()["checks"] if c["name"] == "certificate")
    assert (certificate["status"], certificate["enable"]) == ("skipped", "--kms-url URL")
