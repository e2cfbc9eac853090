"""Where the devnet keeps its files: `$WARDEN_HOME` or `./.warden` (devnet.json, anvil state, logs)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from warden.errors import OperationFailed
from warden.files import write_secret_file


def warden_home() -> Path:
    return Path(os.environ.get("WARDEN_HOME") or ".warden").resolve()


@dataclass
class DevnetCvm:
    """A demo CVM: where it runs, how it was deployed (platform), which guest version it runs."""

    node: str
    app: str  # app name in DevnetState.apps
    platform: str  # a deploy path of warden.compose.platforms (decides its app-compose.json bytes)
    instance_id: str  # hex, 20 bytes
    guest_version: str = "0.5.7"
    fallback_to_v1: bool = False
    guest_url: str | None = None  # its dstack guest API (DSTACK_SIMULATOR_ENDPOINT), served by the services
    guest_socket: str | None = None  # the same API on a unix socket (None when the path is too long for one)


@dataclass
class DevnetState:
    """What `warden devnet up` started and deployed; written to devnet.json for every other command."""

    rpc_url: str
    chain_id: int
    anvil_pid: int
    owner: str
    kms: str
    kms_implementation: str
    app_implementation: str
    apps: dict[str, str] = field(default_factory=dict)
    detached: bool = False
    services_pid: int | None = None
    foreground_pid: int | None = None  # the `warden devnet up` that waits for Ctrl-C (None when detached)
    kms_url: str | None = None
    webhook_url: str | None = None
    api_url: str | None = None
    pccs_url: str | None = None  # PCCS-compatible collateral from the mock PKI (when this warden serves one)
    api_token: str | None = None  # the devnet workspace's control-plane token (devnet.json is 0600)
    kms_version: str = "0.5.7"
    os_image_hash: str | None = None
    nodes: list[str] = field(default_factory=list)
    cvms: dict[str, DevnetCvm] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # read back from JSON as plain dicts
        self.cvms = {k: v if isinstance(v, DevnetCvm) else DevnetCvm(**v) for k, v in self.cvms.items()}

    def status_json(self, running: bool, cvm_status: dict[str, str] | None = None) -> dict[str, Any]:
        """The shape of `warden devnet status --json`."""
        # a stopped devnet runs no CVM, whatever they last reported
        statuses = (cvm_status or {}) if running else dict.fromkeys(self.cvms, "stopped")
        return {
            "running": running,
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "kms": self.kms,
            "app_implementation": self.app_implementation,
            "owner": self.owner,
            "kms_url": self.kms_url,
            "kms_version": self.kms_version,
            "auth_webhook_url": self.webhook_url,
            "api_url": self.api_url,
            "dashboard_url": self.api_url + "/" if self.api_url else None,
            "pccs_url": self.pccs_url,
            "api_token": self.api_token,
            "apps": dict(self.apps),
            "nodes": list(self.nodes),
            "cvms": [
                {
                    "name": name,
                    "node": cvm.node,
                    "app": cvm.app,
                    "status": statuses.get(name, "unknown"),
                    "guest_url": cvm.guest_url,
                    "guest_socket": cvm.guest_socket,
                }
                for name, cvm in self.cvms.items()
            ],
        }


def state_file(home: Path | None = None) -> Path:
    return (home or warden_home()) / "devnet.json"


def chain_state_file(home: Path | None = None) -> Path:
    return (home or warden_home()) / "anvil-state.json"


def load_state(home: Path | None = None) -> DevnetState | None:
    path = state_file(home)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return DevnetState(**data)
    except (ValueError, TypeError) as exc:
        raise OperationFailed(f"{path} is damaged ({exc}); remove it and run `warden devnet up`") from None


def save_state(state: DevnetState, home: Path | None = None) -> Path:
    path = state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret_file(path, json.dumps(asdict(state), indent=2) + "\n")  # it holds the devnet's API token
    return path
