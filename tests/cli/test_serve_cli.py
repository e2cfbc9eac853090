"""`warden serve --workers N`: one control plane in N processes over one database and one secret key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.cli import WARDEN_ENV
from tests.support.processes import answers_health, children_of, free_port, wait_until
from warden.devnet.anvil import Anvil


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
