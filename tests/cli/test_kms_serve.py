"""`warden kms serve` as a process: root keys generated once with mode 0600, reused on restart; it starts
while its RPC is down and recovers by itself."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.cli import WARDEN_ENV, assert_clean_error, warden
from tests.support.flaky_proxy import FlakyProxy
from tests.support.processes import answers_health, children_of, free_port
from warden.chain.kms import KmsRegistry
from warden.devnet.anvil import Anvil
from warden.tee.collateral import collateral_json
from warden.tee.pki import MockIntelPki

WARDEN = str(Path(sys.executable).parent / "warden")


def run_kms(
    tmp_path: Path, anvil: Anvil, kms: KmsRegistry, *extra: str, rpc_url: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    (tmp_path / "root.der").write_bytes(pki.root_ca_der)
    (tmp_path / "collateral.json").write_text(collateral_json(pki))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV} | {"WARDEN_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [WARDEN, "kms", "serve", "--port", str(port), "--kms", kms.address, "--rpc-url", rpc_url or anvil.url,
         "--root-ca", str(tmp_path / "root.der"), "--collateral", str(tmp_path / "collateral.json"), *extra],
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
    assert_clean_error(warden("kms", "serve"), 2, "--collateral")
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
