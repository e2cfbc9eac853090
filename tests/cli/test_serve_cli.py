"""`warden serve --workers N`: one control plane in N processes over one database and one secret key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.cli import WARDEN_ENV, assert_clean_error, warden
from tests.support.http_server import serve
from tests.support.processes import answers_health, children_of, free_port, wait_until
from warden.cli.serve import PlaneSpec
from warden.devnet.anvil import Anvil
from warden.tee.node import SimNode
from warden.tee.pccs import create_pccs_app
from warden.tee.pki import MockIntelPki


def test_two_workers_share_the_database_and_accept_each_others_tokens(anvil: Anvil, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV} | {"WARDEN_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "warden.cli.main", "serve", "--workers", "2", "--port", str(port),
               "--rpc-url", anvil.url, "--database-url", f"sqlite:///{tmp_path / 'plane.db'}"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    try:
        wait_until(lambda: answers_health(url), seconds=30)
        wait_until(lambda: len(children_of(process.pid)) >= 2, seconds=30)
        token = (tmp_path / "home" / "api-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        answers = [httpx.get(url + "/api/workspace", headers=headers, timeout=10) for _ in range(20)]
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["workspace"] for a in answers} == {"default"}
        refused = httpx.get(url + "/api/workspace", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "2 worker(s)" in err and "created workspace default" in err
    assert token not in err


def test_serve_refuses_a_bad_pccs_url_or_a_root_without_collateral(tmp_path: Path) -> None:
    base = ("serve", "--rpc-url", "http://127.0.0.1:1", "--database-url", f"sqlite:///{tmp_path / 'plane.db'}")
    assert_clean_error(warden(*base, "--pccs-url", "pccs.example.com"), 2, "invalid PCCS URL")
    root = tmp_path / "root.pem"
    root.write_bytes(b"")
    assert_clean_error(warden(*base, "--root-ca", str(root)), 2, "--collateral or --pccs-url")
    assert not (tmp_path / "plane.db").exists()  # refused before anything was created


def test_the_control_plane_verifies_node_quotes_with_collateral_from_a_pccs(tmp_path: Path, isolated_env: Path) -> None:
    pki = MockIntelPki.create()
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root_ca_pem)
    node = SimNode.load_or_create(tmp_path / "prod6", "prod6", "us-east")
    with serve(create_pccs_app(pki)) as pccs:
        # what each worker of `warden serve --pccs-url URL --root-ca FILE` builds
        spec = PlaneSpec(f"sqlite:///{tmp_path / 'plane.db'}", ["http://127.0.0.1:1"], None, str(root),
                         str(isolated_env), pccs_url=pccs)  # fmt: skip
        plane = spec.build()
        try:
            assert plane.attestation is not None
            assert plane.attestation.verify(node.host_quote(pki)).ppid == node.ppid
        finally:
            plane.close()
