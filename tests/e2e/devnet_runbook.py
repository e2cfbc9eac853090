"""A whole `warden devnet` for a test module, driven the way the runbooks in docs/ drive it.

`warden devnet up|down` run through the installed console script in a subprocess (they start and stop
background processes); every other command runs in-process (fast) with exactly the environment that
`eval "$(warden devnet env)"` gives a shell, plus WARDEN_HOME.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli import WARDEN_ENV, Run, warden

WARDEN = str(Path(sys.executable).parent / "warden")
DEMO_APP = "shared-key-demo"
# the demo fleet of the field report: CVM → (node, deploy path)
DEMO_CVMS = {
    "shared-key-demo-1": ("prod5", "phala-cli"),
    "shared-key-demo-2": ("prod6", "phala-api"),
    "shared-key-demo-selfhost": ("hosted", "selfhost-vmm"),
}
DEMO_NODES = ["prod5", "prod6", "prod9", "hosted"]


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME=VALUE` lines (shell-quoted) as a shell's `eval` would read them."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if not words:
            continue
        assert words[0] == "export" and len(words) == 2, line
        name, value = words[1].split("=", 1)
        env[name] = value
    return env


@dataclass
class Devnet:
    """A running devnet in `home`, and the environment a user's shell would have for it."""

    home: Path
    status: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    # -- subprocess: the commands that start and stop processes -----------------------------------------

    def shell(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`warden ARGS` as a separate process, with WARDEN_HOME and nothing else of warden's configuration."""
        base = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV}
        base["WARDEN_HOME"] = str(self.home)
        return subprocess.run([WARDEN, *args], capture_output=True, text=True, env=base, timeout=120, check=False)

    def up(self) -> subprocess.CompletedProcess[str]:
        """`warden devnet up --detach --port 0 --json`, then `eval "$(warden devnet env)"`."""
        started = self.shell("devnet", "up", "--detach", "--port", "0", "--json")
        assert started.returncode == 0, started.stderr
        self.status = json.loads(started.stdout)
        exports = self.shell("devnet", "env")
        assert exports.returncode == 0, exports.stderr
        self.env = parse_exports(exports.stdout) | {"WARDEN_HOME": str(self.home)}
        return started

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.shell("devnet", "down")

    # -- in-process: everything else -------------------------------------------------------------------

    def run(self, *args: str) -> Run:
        """`warden ARGS` in the devnet's shell environment (in-process)."""
        return warden(*args, env=self.env)

    def ok(self, *args: str) -> Any:
        """`warden ARGS --json` that must succeed; its JSON document."""
        run = self.run(*args, "--json")
        assert run.exit_code == 0, (args, run.exit_code, run.stdout, run.stderr)
        return run.json()

    @property
    def app(self) -> str:
        address: str = self.status["apps"][DEMO_APP]
        return address

    # -- what a user reads with curl ---------------------------------------------------------------------

    def api(self, path: str) -> Any:
        """GET the control plane's API with the workspace token (as `curl -H "Authorization: Bearer …"`)."""
        answer = httpx.get(
            self.env["WARDEN_API_URL"] + path,
            headers={"Authorization": f"Bearer {self.env['WARDEN_API_TOKEN']}"},
            timeout=10,
        )
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call to the devnet's chain (as `cast rpc`)."""
        answer = httpx.post(
            self.env["ETH_RPC_URL"], json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        )  # fmt: skip
        body = answer.json()
        assert "error" not in body, body
        return body["result"]

    def sent_by_owner(self) -> int:
        """How many transactions the app owner (the devnet key) has sent: unchanged means nothing was sent."""
        return int(self.rpc("eth_getTransactionCount", self.status["owner"], "latest"), 16)

    def tx_nonce(self, tx_hash: str) -> int:
        return int(self.rpc("eth_getTransactionByHash", tx_hash)["nonce"], 16)

    # -- what the allowlist says -------------------------------------------------------------------------

    def allowed_devices(self, app: str | None = None) -> dict[str, str | None]:
        """device_id → node for every device `warden allow-devices list` shows as allowed."""
        data = self.ok("allow-devices", "list", app or self.app)
        return {d["device_id"]: d["node"] for d in data["devices"] if d["allowed"]}

    def device_of(self, node: str) -> str:
        """The node's current device id, from `warden nodes show NODE`."""
        device: str = self.ok("nodes", "show", node)["device_id"]
        return device

    def cvm_rows(self) -> dict[str, dict[str, Any]]:
        """`warden cvms ls` by CVM name."""
        return {c["name"]: c for c in self.ok("cvms", "ls")["cvms"]}
