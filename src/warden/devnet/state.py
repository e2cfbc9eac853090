"""Where the devnet keeps its files: `$WARDEN_HOME` or `./.warden` (devnet.json, anvil state, logs)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from warden.errors import OperationFailed


def warden_home() -> Path:
    return Path(os.environ.get("WARDEN_HOME") or ".warden").resolve()


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

    def status_json(self, running: bool) -> dict[str, Any]:
        """The shape of `warden devnet status --json` (services not running yet report null)."""
        return {
            "running": running,
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "kms": self.kms,
            "app_implementation": self.app_implementation,
            "owner": self.owner,
            "kms_url": None,
            "api_url": None,
            "dashboard_url": None,
            "api_token": None,
            "apps": dict(self.apps),
            "nodes": [],
            "cvms": [],
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
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path
