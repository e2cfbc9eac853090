"""The node inventory: which machines exist, their names and current device ids.

Read from a nodes file (`--nodes-file` / WARDEN_NODES_FILE): a JSON or TOML list of
`{name, device_id, ppid?, region?}`, or the JSON that `phala nodes ls --json` prints (`{"items": […]}`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.chain.inputs import hex0x, parse_bytes32, parse_hex, parse_ppid
from warden.errors import BadInput


@dataclass(frozen=True)
class Node:
    name: str
    device_id: bytes | None  # None when the source knows the node but not its device id
    ppid: bytes | None = None
    region: str | None = None
    status: str | None = None
    # ids the node presented before its current one (a BIOS or microcode update changes the PPID)
    former_device_ids: tuple[bytes, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device_id": hex0x(self.device_id) if self.device_id else None,
            "ppid": hex0x(self.ppid) if self.ppid else None,
            "region": self.region,
            "status": self.status,
            "former_device_ids": [hex0x(d) for d in self.former_device_ids],
        }


class Inventory:
    """Nodes by name (case-insensitive, possibly ambiguous) and by device id."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self.nodes = list(nodes)
        self._by_device: dict[bytes, Node] = {}
        for node in self.nodes:
            if node.device_id is not None:
                self._by_device.setdefault(node.device_id, node)
        # ids that nodes presented before their current one, and that no node presents now → that node
        self._former: dict[bytes, str] = {}
        for node in self.nodes:
            for device_id in node.former_device_ids:
                if device_id not in self._by_device:
                    self._former.setdefault(device_id, node.name)

    def __len__(self) -> int:
        return len(self.nodes)

    def matching(self, name: str) -> list[Node]:
        wanted = name.strip().lower()
        return [n for n in self.nodes if n.name.lower() == wanted]

    def node_for_device(self, device_id: bytes) -> Node | None:
        return self._by_device.get(device_id)

    def name_for_device(self, device_id: bytes) -> str | None:
        node = self.node_for_device(device_id)
        return node.name if node else None

    def former_names(self) -> dict[bytes, str]:
        """Ids that nodes presented before their current one (and no node presents now) → that node."""
        return dict(self._former)

    def former_name_for_device(self, device_id: bytes) -> str | None:
        """The node that presented this id before its current one (None if a node presents it now)."""
        return self._former.get(device_id)

    def label_for_device(self, device_id: bytes) -> str | None:
        """What to call a device in a table: its node, `prod6 (former id)`, or None when unknown."""
        name = self.name_for_device(device_id)
        if name is not None:
            return name
        former = self.former_name_for_device(device_id)
        return f"{former} (former id)" if former else None


def load_nodes_file(path: Path) -> Inventory:
    """Parse a nodes file; every malformed entry is reported with where it is."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"nodes file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read nodes file {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"nodes file {path} is not valid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"nodes file {path} is not valid JSON: {exc}") from None
    return Inventory(parse_nodes(data, str(path)))


def parse_nodes(data: Any, source: str) -> list[Node]:
    if isinstance(data, Mapping):
        # `phala nodes ls --json` → {"items": [...]}; TOML → [[nodes]] tables
        for key in ("items", "nodes"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            raise BadInput(f"{source}: expected a list of nodes, or an object with `items` or `nodes`")
    if not isinstance(data, list):
        raise BadInput(f"{source}: expected a list of nodes")
    nodes = []
    for i, entry in enumerate(data):
        where = f"{source}: node {i + 1}"
        if not isinstance(entry, Mapping):
            raise BadInput(f"{where}: expected an object with `name` and `device_id`")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"{where}: missing `name`")
        nodes.append(
            Node(
                name=name.strip(),
                device_id=_optional_hex(entry.get("device_id"), f"{where} ({name}): device_id", parse_bytes32),
                ppid=_optional_hex(entry.get("ppid"), f"{where} ({name}): ppid", parse_ppid),
                region=_optional_str(entry.get("region")),
                status=_optional_str(entry.get("status")),
                former_device_ids=_former_ids(entry.get("former_device_ids"), f"{where} ({name}): former_device_ids"),
            )
        )
    return nodes


def _former_ids(value: Any, what: str) -> tuple[bytes, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list):
        raise BadInput(f"invalid {what}: expected a list of device ids")
    return tuple(parse_hex(str(v), what, 32) for v in value)


def _optional_hex(value: Any, what: str, parse: Callable[[str, str], bytes]) -> bytes | None:
    if value in (None, "", "-"):
        return None
    if not isinstance(value, str):
        raise BadInput(f"invalid {what}: expected hex text")
    return parse(value, what)


def _optional_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
