"""`warden kms serve` as a process: root keys generated once with mode 0600, reused on restart; it starts
while its RPC is down and recovers by itself."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.chain import deploy_app, send
from tests.support.cli import WARDEN_ENV, assert_clean_error, warden
from tests.support.flaky_proxy import FlakyProxy
from tests.support.http_server import serve
from tests.support.processes import answers_health, children_of, free_port
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil
from warden.keys.sealed_box import new_key_pair, report_data_for
from warden.kms.service import APP_KEY_PURPOSE
from warden.tee.collateral import collateral_json
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pccs import create_pccs_app
from warden.tee.pki import MockIntelPki

COMPOSE = hashlib.sha256(b'{"name":"pccs-demo","runner":"docker-compose"}').digest()

WARDEN = str(Path(sys.executable).parent / "warden")


def run_kms(
    tmp_path: Path, anvil: Anvil, kms: KmsRegistry, *extra: str, rpc_url: str | None = None, pccs_url: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    (tmp_path / "root.der").write_bytes(pki.root_ca_der)
    (tmp_path / "collateral.json").write_text(collateral_json(pki))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV} | {
        "WARDEN_HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    collateral = ["--pccs-url", pccs_url] if pccs_url else ["--collateral", str(tmp_path / "collateral.json")]
    process = subprocess.Popen(
        [WARDEN, "kms", "serve", "--port", str(port), "--kms", kms.address, "--rpc-url", rpc_url or anvil.url,
         "--root-ca", str(tmp_path / "root.der"), *collateral, *extra],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if answers_health(url):
            return process, url
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"kms serve did not come up: {process.stderr.read() if process.stderr else ''}")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=15)
    return err


def test_serve_generates_root_keys_once_and_reports_meta(tmp_path: Path, anvil: Anvil, kms: KmsRegistry) -> None:
    process, url = run_kms(tmp_path, anvil, kms, "--csr-api-versions", "1")
    try:
        meta = httpx.post(url + "/prpc/KMS.GetMeta", json={}).json()
    finally:
        first_err = stop(process)
    assert meta["kms_contract_address"] == kms.address and meta["chain_id"] == 31337
    assert meta["supported_csr_api_versions"] == [1]
    assert "generated" in first_err
    key_dir = tmp_path / "home" / "kms"
    for path in key_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    secrets = [p.read_bytes().hex() for p in key_dir.iterdir()]
    assert not any(s in first_err for s in secrets)  # keys never reach the logs

    process, url = run_kms(tmp_path, anvil, kms)
    try:
        again = httpx.post(url + "/prpc/KMS.GetMeta", json={}).json()
    finally:
        second_err = stop(process)
    assert again["k256_pubkey"] == meta["k256_pubkey"] and "loaded" in second_err
    assert again["supported_csr_api_versions"] == [1, 2]


def test_serve_refuses_bad_options(tmp_path: Path) -> None:
    assert_clean_error(warden("kms", "serve", "--csr-api-versions", "3", "--collateral", "x"), 2, "csr-api-versions")
    assert_clean_error(warden("kms", "serve", "--pccs-url", "ftp://pccs.example"), 2, "PCCS")
    both = warden("kms", "serve", "--pccs-url", "http://127.0.0.1:1", "--collateral", str(tmp_path / "c.json"))
    assert_clean_error(both, 2, "--collateral")
    missing = warden("kms", "serve", "--collateral", str(tmp_path / "nope.json"))
    assert_clean_error(missing, 2, "collateral file", "does not exist")


def test_serve_starts_with_the_rpc_down_and_recovers_without_a_restart(
    tmp_path: Path, anvil: Anvil, kms: KmsRegistry
) -> None:
    dead_port = free_port()  # nothing listens there until the proxy below binds it
    secret = "S3CRET-api-key-0123456789"
    # one process: its breaker logs the outage once (with N workers, each worker has its own breaker)
    process, url = run_kms(tmp_path, anvil, kms, "--workers", "1", rpc_url=f"http://127.0.0.1:{dead_port}/v2/{secret}")
    try:
        down = httpx.get(url + "/")
        assert down.status_code == 503
        assert down.json()["chain"]["status"] == "unavailable" and down.json()["chain"]["chain_id"] is None
        meta = httpx.post(url + "/prpc/KMS.GetMeta", json={})
        assert meta.status_code == 503 and meta.json()["error"].startswith("authorization backend unavailable")
        with FlakyProxy(anvil.url, port=dead_port):
            deadline = time.monotonic() + 20
            while httpx.get(url + "/").status_code != 200:
                assert time.monotonic() < deadline, "kms serve did not notice the RPC is back"
                time.sleep(0.05)
            assert httpx.get(url + "/").json()["chain"]["chain_id"] == 31337
            meta = httpx.post(url + "/prpc/KMS.GetMeta", json={})
            assert meta.status_code == 200 and meta.json()["kms_contract_address"] == kms.address
    finally:
        err = stop(process)
    assert "the chain does not answer yet" in err
    assert err.count("refuses connections") == 1 and "answers again" in err
    assert secret not in err


def test_workers_are_separate_processes_serving_the_same_root_keys(
    tmp_path: Path, anvil: Anvil, kms: KmsRegistry
) -> None:
    process, url = run_kms(tmp_path, anvil, kms, "--workers", "2")
    try:
        deadline = time.monotonic() + 20
        while len(children_of(process.pid)) < 2:
            assert time.monotonic() < deadline, "kms serve --workers 2 did not start two workers"
            time.sleep(0.1)
        keys = set()
        for _ in range(20):  # a new connection each time: the workers share the listening socket
            answer = httpx.post(url + "/prpc/KMS.GetMeta", json={}, headers={"Connection": "close"})
            assert answer.status_code == 200
            keys.add(answer.json()["k256_pubkey"])
    finally:
        err = stop(process)
    assert len(keys) == 1  # every worker loaded the root keys the parent made once
    assert "2 worker(s)" in err and err.count("generated") == 1


def test_serve_verifies_quotes_with_collateral_from_a_pccs_and_fails_closed_without_it(
    tmp_path: Path, anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry
) -> None:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    node = SimNode.load_or_create(tmp_path / "node", "prod5", "devnet")
    os_image = bytes([0x0E]) * 32
    send(chain, owner, kms.add_os_image(os_image))
    app = deploy_app(chain, owner, kms, device_id=node.device_id, compose_hash=COMPOSE)
    cvm = SimCvm(node, pki, app_id=bytes.fromhex(app.address[2:]), compose_hash=COMPOSE,
                 instance_id=(1).to_bytes(20, "big"), os_image_hash=os_image,
                 key_provider=b'{"name":"kms","id":"devnet"}')  # fmt: skip
    _private, public = new_key_pair()
    body = {"api_version": 1, "requester_key": public.hex(),
            "attestation": cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, public))}  # fmt: skip

    with serve(create_pccs_app(pki)) as pccs:
        process, url = run_kms(tmp_path, anvil, kms, "--workers", "1", pccs_url=pccs)
        try:
            answer = httpx.post(url + "/prpc/KMS.GetAppKey", json=body, timeout=30)
        finally:
            stop(process)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sealed_keys"]  # keys released: the quote verified with the PCCS's collateral

    dead = f"http://127.0.0.1:{free_port()}"
    process, url = run_kms(tmp_path, anvil, kms, "--workers", "1", pccs_url=dead)
    try:
        refused = httpx.post(url + "/prpc/KMS.GetAppKey", json=body, timeout=60)
    finally:
        stop(process)
    assert refused.status_code == 503, refused.text  # no collateral: undecided, no key
    assert "collateral" in refused.json()["error"].lower()
