"""The Device Allowlist panel's data: the chain's allowlist merged with where the app's CVMs run and
which nodes the workspace may deploy to.

Each row is one device id with a status: `allowed` (on chain), `deployed-not-allowed` (a CVM of the app
is placed on a node with that id, and the chain does not allow it: it will be refused keys) or
`known-not-deployed` (a deployable node, not allowed, no CVM of this app on it).

The chain's part (`chain_allowlist`) is independent of the inventory, so a caller may keep it while the
chain's head has not moved (the control plane does); the inventory's part is read fresh every time. Rows
are ordered (what needs attention first) and paged by their sort key (`row_key`), so a page after a
cursor never skips or repeats a device.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x
from warden.chain.logcache import ScanCache
from warden.errors import BadInput
from warden.fleet.devices import DeviceAllowlist, allowlist_head_json, list_devices
from warden.fleet.inventory import Inventory
from warden.fleet.store import CvmView, Placement

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


RowKey = tuple[int, str, bytes]


def row_key(row: DeviceRow) -> RowKey:
    """Where a row sorts: status (what needs attention first), node name (unknown last), device id."""
    return STATUS_ORDER[row.status], row.node or "~", row.device_id


def encode_row_key(key: RowKey) -> str:
    """A row's sort key as text (for a page cursor): `status:device-hex:node`."""
    return f"{key[0]}:{key[2].hex()}:{key[1]}"


def decode_row_key(text: str) -> RowKey:
    """The sort key `encode_row_key` wrote; anything else is a BadInput."""
    parts = text.split(":", 2)
    try:
        order, device, node = int(parts[0]), bytes.fromhex(parts[1]), parts[2]
    except (ValueError, IndexError):
        raise BadInput("invalid cursor: pass the `next_cursor` of the previous page as it is") from None
    if len(device) != 32 or order not in STATUS_ORDER.values() or not node:
        raise BadInput("invalid cursor: pass the `next_cursor` of the previous page as it is")
    return order, node, device


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

    def page(self, after: RowKey | None, limit: int) -> tuple[list[DeviceRow], bool]:
        """At most `limit` rows sorting after `after` (None: from the first), and whether more follow."""
        start = 0 if after is None else bisect_right([row_key(r) for r in self.rows], after)
        return self.rows[start : start + limit], start + limit < len(self.rows)

    def as_json(self, rows: Sequence[DeviceRow] | None = None) -> dict[str, Any]:
        """The view (the warning always about every row), with `rows` (default: all) as its devices."""
        head = allowlist_head_json(self.app, self.chain_id, self.owner, self.allow_any_device, self.block)
        shown = self.rows if rows is None else rows
        return {**head, "warning": bool(self.offending), "devices": [r.as_json() for r in shown]}


def chain_allowlist(app: AppAuth, cache: ScanCache | None = None) -> DeviceAllowlist:
    """The chain's part of the view: every device allowed now (unnamed: the view's inventory names them)."""
    return list_devices(app, Inventory(), cache)


def device_allowlist_view(
    app: AppAuth,
    inventory: Inventory,
    cvms: Sequence[Placement | CvmView],
    cache: ScanCache | None = None,
    onchain: DeviceAllowlist | None = None,
) -> AllowlistView:
    """Merge the chain's allowlist with the app's CVMs (`cvms`) and the workspace's deployable nodes (`inventory`).

    `onchain`: the chain's allowlist as read before (`chain_allowlist`); None: read it now."""
    onchain = onchain if onchain is not None else chain_allowlist(app, cache)
    former = inventory.former_names()
    by_node = {n.name: n for n in inventory.nodes}
    rows: dict[bytes, DeviceRow] = {}

    def row(device_id: bytes) -> DeviceRow:
        if device_id not in rows:
            node = inventory.node_for_device(device_id)
            rows[device_id] = DeviceRow(device_id, node.name if node else None, node.region if node else None)
        return rows[device_id]

    for device in onchain.devices:
        entry = row(device.device_id)
        entry.allowed, entry.former_node = True, former.get(device.device_id)
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
    ordered = sorted(rows.values(), key=row_key)
    return AllowlistView(onchain.app, onchain.chain_id, onchain.owner, onchain.allow_any_device, onchain.head, ordered)
