"""An app's device allowlist: what the chain says, which nodes those devices are, and changes to it.

Shared by `warden allow-devices` and the dashboard. The allowlist is read from the DstackApp's own
events (`DeviceAdded` / `DeviceRemoved`, including those its initializer emitted) and every device is
confirmed with `allowedDeviceIds`; no backend is needed to know which devices exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warden.chain.allowlist import current_members, device_spec, membership
from warden.chain.app import AppAuth
from warden.chain.history import History, block_times, read_history
from warden.chain.inputs import HEX_DIGITS, hex0x, parse_bytes32
from warden.chain.logcache import ScanCache
from warden.errors import BadInput
from warden.fleet.inventory import Inventory, Node

DEVICE_EVENTS = ("DeviceAdded", "DeviceRemoved", "AllowAnyDeviceSet")
HEX_ID = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class DeviceTarget:
    """A device an operator named: its id and, when known, the node it is."""

    device_id: bytes
    node: str | None


@dataclass(frozen=True)
class AllowedDevice:
    device_id: bytes
    node: str | None
    block: int  # when it was (last) added
    tx: str
    former_node: str | None = None  # the node that presented this id before a firmware update

    @property
    def label(self) -> str | None:
        return self.node or (f"{self.former_node} (former id)" if self.former_node else None)

    def as_json(self, enforced: bool) -> dict[str, Any]:
        return {
            "device_id": hex0x(self.device_id),
            "allowed": True,
            "enforced": enforced,
            "node": self.node,
            "former_node": self.former_node,
            "block": self.block,
            "tx": self.tx,
        }


@dataclass(frozen=True)
class DeviceAllowlist:
    app: str
    chain_id: int
    owner: str
    allow_any_device: bool
    devices: list[AllowedDevice]
    head: int

    def as_json(self) -> dict[str, Any]:
        devices = [d.as_json(not self.allow_any_device) for d in self.devices]
        return {**allowlist_head_json(self.app, self.chain_id, self.owner, self.allow_any_device, self.head),
                "devices": devices}  # fmt: skip


def allowlist_head_json(app: str, chain_id: int, owner: str, allow_any_device: bool, block: int) -> dict[str, Any]:
    """What every device-allowlist answer starts with: the app, its chain and owner, the flag, the block read."""
    return {"app": app, "chain_id": chain_id, "owner": owner, "allow_any_device": allow_any_device, "block": block}


def device_history(app: AppAuth, cache: ScanCache | None = None) -> History:
    return read_history(app, DEVICE_EVENTS, cache=cache)


def list_devices(app: AppAuth, inventory: Inventory, cache: ScanCache | None = None) -> DeviceAllowlist:
    """Every device allowed now, each confirmed on chain at one block, with its node name if known."""
    also = [("owner", ()), ("allowAnyDevice", ())]
    members, head, (owner, allow_any) = current_members(
        device_spec(app), DEVICE_EVENTS, "DeviceAdded", "deviceId", cache, also
    )
    former = inventory.former_names()
    devices = [AllowedDevice(m.id, inventory.name_for_device(m.id), m.block, m.tx, former.get(m.id)) for m in members]
    return DeviceAllowlist(app.address, app.chain.chain_id, str(owner), bool(allow_any), devices, head)


def history_json(
    app: AppAuth, inventory: Inventory, cache: ScanCache | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The audit trail: every DeviceAdded, DeviceRemoved and AllowAnyDeviceSet (or the last `limit`), with
    time and node, oldest first."""
    events = device_history(app, cache).events
    if limit is not None:
        events = events[-limit:] if limit > 0 else []
    times = block_times(app.chain, [(e.block_number, e.block_hash) for e in events], cache)
    former = inventory.former_names()
    rows = []
    for event in events:
        device = bytes(event.args["deviceId"]) if "deviceId" in event.args else None
        rows.append(
            {
                "block": event.block_number,
                "time": times.get(event.block_number),
                "tx": event.tx_hash,
                "event": event.event,
                "device_id": hex0x(device) if device else None,
                "node": inventory.name_for_device(device) if device else None,
                "former_node": former.get(device) if device else None,
                "enabled": bool(event.args["allowAny"]) if event.event == "AllowAnyDeviceSet" else None,
            }
        )
    return rows


def resolve_devices(items: Sequence[str], inventory: Inventory, source: str = "the inventory") -> list[DeviceTarget]:
    """Hex ids as they are; node names through the inventory (ambiguous or unknown names are refused)."""
    targets: list[DeviceTarget] = []
    given: dict[bytes, str] = {}
    for item in items:
        text = item.strip()
        if HEX_ID.match(text) or text.lower().startswith("0x"):
            device = parse_bytes32(text, "device id")
            target = DeviceTarget(device, inventory.name_for_device(device))
        else:
            target = _node_target(text, inventory, source)
        if target.device_id in given:
            raise BadInput(
                f"device {hex0x(target.device_id)} is given twice ({given[target.device_id]!r} and {item!r})"
            )
        given[target.device_id] = item
        targets.append(target)
    return targets


def _node_target(name: str, inventory: Inventory, source: str) -> DeviceTarget:
    if not name:
        raise BadInput("empty device: pass a 32-byte hex device id or a node name")
    if len(name) >= 32 and set(name) <= HEX_DIGITS and not inventory.matching(name):
        parse_bytes32(name, "device id")  # a device id of the wrong length, not a node name: raises
    if not len(inventory):
        where = "no node inventory is configured" if source == "the inventory" else f"{source} has no nodes"
        raise BadInput(
            f"{name!r} is not a device id, and {where} to resolve node names: "
            "pass --nodes-file (or set WARDEN_NODES_FILE / WARDEN_API_URL)"
        )
    matches = inventory.matching(name)
    if not matches:
        known = ", ".join(sorted({n.name for n in inventory.nodes})[:20])
        raise BadInput(f"unknown node {name!r}: not in {source} (known: {known}); or pass a 32-byte device id")
    if len(matches) > 1:
        candidates = "; ".join(
            f"{n.name} {hex0x(n.device_id) if n.device_id else '(no device id)'}"
            + (f" in {n.region}" if n.region else "")
            for n in matches
        )
        raise BadInput(f"node name {name!r} is ambiguous ({len(matches)} nodes: {candidates}); pass the device id")
    node = matches[0]
    if node.device_id is None:
        raise BadInput(f"node {node.name!r} has no known device id; pass the device id")
    return DeviceTarget(node.device_id, node.name)


def addable_nodes(app: AppAuth, inventory: Inventory) -> list[DeviceTarget]:
    """Inventory nodes whose current device is not allowed yet (what `add -i` offers), read from the chain."""
    known = [n for n in inventory.nodes if n.device_id is not None]
    unique = list({n.device_id: n for n in known}.values())
    present = membership(device_spec(app), [n.device_id for n in unique if n.device_id])
    return [DeviceTarget(n.device_id, n.name) for n, ok in zip(unique, present, strict=True) if not ok and n.device_id]


@dataclass(frozen=True)
class DeviceChoice:
    """A row of the `add -i` / `remove -i` pickers: a device, its node, and what an operator should know."""

    device_id: bytes | None  # None: a node whose device id is not known yet
    node: str | None
    region: str | None
    allowed: bool
    former_node: str | None = None  # the node presented this id before a firmware update
    cvms: tuple[str, ...] = ()  # the app's CVMs on the node that presents this id

    @property
    def target(self) -> DeviceTarget:
        assert self.device_id is not None, "a node without a device id cannot be picked"
        return DeviceTarget(self.device_id, self.node)

    def markers(self) -> str:
        """`allowed`, `former id of prod6`, `runs shared-key-demo-2`, comma separated."""
        marks = ["allowed"] if self.allowed else []
        if self.former_node:
            marks.append(f"former id of {self.former_node}")
        if self.cvms:
            refused = "" if self.allowed else " (refused at next boot)"
            marks.append(f"runs {', '.join(self.cvms)}{refused}")
        return ", ".join(marks)


def add_choices(app: AppAuth, inventory: Inventory, cvms_on: Mapping[bytes, Sequence[str]]) -> list[DeviceChoice]:
    """Every inventory node (one row per device id), whether the app allows it (read from the chain), and the
    app's CVMs on it: what `add -i` shows. Allowed nodes and nodes without a device id cannot be picked."""
    first: dict[bytes | str, Node] = {}
    for node in inventory.nodes:
        first.setdefault(node.device_id or node.name, node)  # a device id two nodes present: its first node
    unique = list(first.values())
    known = [n.device_id for n in unique if n.device_id is not None]
    allowed = dict(zip(known, membership(device_spec(app), known), strict=True)) if known else {}
    rows = []
    for n in unique:
        device = n.device_id
        cvms = tuple(cvms_on.get(device, ())) if device else ()
        rows.append(DeviceChoice(device, n.name, n.region, allowed.get(device, False) if device else False, cvms=cvms))
    return rows


def remove_choices(
    allowlist: DeviceAllowlist, inventory: Inventory, cvms_on: Mapping[bytes, Sequence[str]]
) -> list[DeviceChoice]:
    """Every device the app allows, with its node (or the node it was before), region and the app's CVMs on
    it: what `remove -i` shows."""
    rows = []
    for device in allowlist.devices:
        node = inventory.node_for_device(device.device_id)
        region = node.region if node else None
        rows.append(DeviceChoice(device.device_id, device.node, region, True, device.former_node,
                                 tuple(cvms_on.get(device.device_id, ()))))  # fmt: skip
    return rows
