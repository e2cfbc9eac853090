"""The Device Allowlist panel's data: the chain's allowlist merged with where the app's CVMs run and
which nodes the workspace may deploy to.

Each row is one device id with a status: `allowed` (on chain), `deployed-not-allowed` (a CVM of the app
is placed on a node with that id, and the chain does not allow it: it will be refused keys) or
`known-not-deployed` (a deployable node, not allowed, no CVM of this app on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x
from warden.chain.logcache import ScanCache
from warden.fleet.devices import allowlist_head_json, list_devices
from warden.fleet.inventory import Inventory
from warden.fleet.store import CvmView

DeviceStatus = Literal["allowed", "deployed-not-allowed", "known-not-deployed"]
STATUS_ORDER: dict[str, int] = {"deployed-not-allowed": 0, "allowed": 1, "known-not-deployed": 2}


@dataclass
class DeviceRow:
    device_id: bytes
    node: str | None = None
    region: str | None = None
    allowed: bool = False
    deployable: bool = False
    cvms: list[str] = field(default_factory=list)
    former_node: str | None = None  # the node that presented this id before a firmware update

    @property
    def deployed(self) -> bool:
        return bool(self.cvms)

    @property
    def status(self) -> DeviceStatus:
        if self.allowed:
            return "allowed"
        return "deployed-not-allowed" if self.deployed else "known-not-deployed"

    def as_json(self) -> dict[str, Any]:
        return {
            "device_id": hex0x(self.device_id),
            "node": self.node,
            "former_node": self.former_node,
            "region": self.region,
            "status": self.status,
            "allowed": self.allowed,
            "deployed": self.deployed,
            "deployable": self.deployable,
            "cvms": list(self.cvms),
        }


@dataclass(frozen=True)
class AllowlistView:
    app: str
    chain_id: int
    owner: str
    allow_any_device: bool
    block: int
    rows: list[DeviceRow]

    @property
    def offending(self) -> list[DeviceRow]:
        """Running nodes the KMS would refuse (none while allowAnyDevice is on)."""
        if self.allow_any_device:
            return []
        return [r for r in self.rows if r.status == "deployed-not-allowed"]

    def as_json(self) -> dict[str, Any]:
        head = allowlist_head_json(self.app, self.chain_id, self.owner, self.allow_any_device, self.block)
        return {**head, "warning": bool(self.offending), "devices": [r.as_json() for r in self.rows]}


def device_allowlist_view(
    app: AppAuth, inventory: Inventory, cvms: list[CvmView], cache: ScanCache | None = None
) -> AllowlistView:
    """Merge the chain's allowlist with the app's CVMs (`cvms`) and the workspace's deployable nodes (`inventory`)."""
    onchain = list_devices(app, inventory, cache)
    by_node = {n.name: n for n in inventory.nodes}
    rows: dict[bytes, DeviceRow] = {}

    def row(device_id: bytes) -> DeviceRow:
        if device_id not in rows:
            node = inventory.node_for_device(device_id)
            rows[device_id] = DeviceRow(device_id, node.name if node else None, node.region if node else None)
        return rows[device_id]

    for device in onchain.devices:
        entry = row(device.device_id)
        entry.allowed, entry.former_node = True, device.former_node
    for node in inventory.nodes:
        if node.device_id is not None:
            row(node.device_id).deployable = True
    for cvm in cvms:
        if cvm.app != onchain.app or cvm.status == "stopped":
            continue
        device_id = cvm.node_device_id
        if device_id is None:
            continue
        entry = row(device_id)
        entry.node = entry.node or cvm.node
        entry.region = entry.region or (by_node[cvm.node].region if cvm.node in by_node else None)
        entry.cvms.append(cvm.name)
    ordered = sorted(rows.values(), key=lambda r: (STATUS_ORDER[r.status], r.node or "~", r.device_id))
    return AllowlistView(onchain.app, onchain.chain_id, onchain.owner, onchain.allow_any_device, onchain.head, ordered)
