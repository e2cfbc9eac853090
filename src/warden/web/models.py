"""What the control plane's API answers, as pydantic models: the server declares them (so `/api/openapi.json`
documents every answer) and `ControlPlaneClient` checks each answer against the same ones.

Byte values (device ids, PPIDs, hashes, instance ids, tx hashes) are `Hex`: any hex in, `0x`-lowercase out.
Contract addresses are `ChecksumAddress`: any address in, EIP-55 out. The JSON is the one each view's
`as_json()` writes (the field order too); answers may carry fields a model does not name yet (a newer server),
and the client passes them on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from warden.chain.inputs import hex0x, parse_address, parse_hex
from warden.errors import BadInput
from warden.fleet.allowlist_view import DeviceStatus
from warden.fleet.store import CVM_STATUSES, NODE_STATUSES


def _hex_of(length: int | None) -> Callable[[Any], bytes]:
    """A validator: bytes as they are, hex text (0x optional, any case) to bytes; `length` in bytes if fixed."""
    what = f"{length}-byte hex value" if length else "hex value"

    def validate(value: Any) -> bytes:
        if isinstance(value, bytes):
            if length is not None and len(value) != length:
                raise ValueError(f"invalid {what}: got {len(value)} bytes")
            return value
        if not isinstance(value, str):
            raise ValueError(f"invalid {what}: expected hex text")
        try:
            return parse_hex(value, what, length)
        except BadInput as exc:  # pydantic reports a ValueError as the field's error
            raise ValueError(str(exc)) from None

    return validate


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("invalid address: expected hex text")
    try:
        return parse_address(value)
    except BadInput as exc:
        raise ValueError(str(exc)) from None


def _hex_schema(digits: str, description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": f"^0x{digits}$", "description": description})


_to_hex = PlainSerializer(hex0x, return_type=str)

Hex = Annotated[
    bytes, BeforeValidator(_hex_of(None)), _to_hex, _hex_schema("(?:[0-9a-f]{2})*", "bytes as 0x-lowercase hex")
]
"""Bytes of any length: hex in (0x optional, any case), `0x`-lowercase hex out."""

Bytes32 = Annotated[
    bytes, BeforeValidator(_hex_of(32)), _to_hex, _hex_schema("[0-9a-f]{64}", "32 bytes as 0x-lowercase hex")
]
"""`Hex` of exactly 32 bytes: a device id, a compose hash, a transaction hash."""

ChecksumAddress = Annotated[
    str,
    BeforeValidator(_address),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "EIP-55 checksummed address"}),
]
"""An Ethereum address: any case or `app_` prefix in, EIP-55 out (a wrong mixed-case checksum is refused)."""


class Answer(BaseModel):
    """An API answer: the fields it documents, and any a newer server adds (kept as they are)."""

    model_config = ConfigDict(extra="allow")


NextCursor = Annotated[str | None, Field(description="Pass as `cursor` for the next page; null on the last page")]
"""Where a list answer's next page starts (an answer from a server without pages is one last page)."""


class ErrorDetail(Answer):
    """Every error answer (401, 404, 409 …): what went wrong, in words a user can act on."""

    detail: str


class WorkspaceAnswer(Answer):
    workspace: str = Field(description="The workspace the API token belongs to")


class Node(Answer):
    """A node this workspace may deploy to, with its current identity."""

    name: str
    device_id: Bytes32 | None = Field(description="sha256(PPID) of the node's last verified quote")
    ppid: Hex | None
    region: str | None
    status: str = Field(description=" | ".join(NODE_STATUSES))
    former_device_ids: list[Bytes32] = Field(description="Ids the node presented before its current one")
    tee_version: str | None
    tcb_status: str | None
    last_attested_at: int | None = Field(description="Unix seconds")


class IdentityChange(Answer):
    """One device identity a node presented (a firmware update changes the PPID, and so the device id)."""

    old_device_id: Bytes32 | None
    device_id: Bytes32
    ppid: Hex
    first_seen: int = Field(description="Unix seconds")
    last_seen: int = Field(description="Unix seconds")


class NodeDetail(Node):
    history: list[IdentityChange] = Field(description="Oldest first")


class NodeList(Answer):
    nodes: list[Node]
    next_cursor: NextCursor = None


class NodeHistory(Answer):
    node: str
    history: list[IdentityChange] = Field(description="Oldest first")


class IdentityUpdate(Answer):
    """What one attestation of a node changed."""

    node: str
    device_id: Bytes32
    old_device_id: Bytes32 | None
    changed: bool
    flagged_cvms: list[str] = Field(description="CVMs on the node whose app does not allow the new device id")


class App(Answer):
    app: ChecksumAddress = Field(description="The DstackApp contract")
    name: str | None
    chain_id: int
    kms: ChecksumAddress | None = Field(description="The DstackKms contract, when known")


class AppList(Answer):
    apps: list[App]
    next_cursor: NextCursor = None


class DeviceRow(Answer):
    """One device id of the merged allowlist: on chain, where the app's CVMs run, deployable nodes."""

    device_id: Bytes32
    node: str | None
    former_node: str | None = Field(description="The node that presented this id before a firmware update")
    region: str | None
    status: DeviceStatus
    allowed: bool
    deployed: bool
    deployable: bool
    cvms: list[str]


class DeviceAllowlist(Answer):
    app: ChecksumAddress
    chain_id: int
    owner: ChecksumAddress
    allow_any_device: bool
    block: int = Field(description="The block the chain's part reflects (re-read when a new block comes)")
    warning: bool = Field(description="A CVM of the app runs on a device the chain does not allow")
    devices: list[DeviceRow] = Field(description="What needs attention first")
    next_cursor: NextCursor = None


class AppEvent(Answer):
    block: int
    time: int | None = Field(description="The block's timestamp (unix seconds)")
    tx: Bytes32
    event: str = Field(description="DeviceAdded | DeviceRemoved | AllowAnyDeviceSet")
    device_id: Bytes32 | None
    node: str | None
    former_node: str | None
    enabled: bool | None = Field(description="allowAnyDevice after an AllowAnyDeviceSet")


class AppHistory(Answer):
    app: ChecksumAddress
    events: list[AppEvent] = Field(description="Oldest first")
    next_cursor: NextCursor = None


class Cvm(Answer):
    name: str
    uuid: str
    instance_id: Hex | None
    app: ChecksumAddress
    app_name: str | None
    node: str
    device_id: Bytes32 | None = Field(description="The device id of the node it is placed on")
    compose_hash: Bytes32 | None
    status: str = Field(description=" | ".join(CVM_STATUSES))
    device_allowed: bool | None
    status_reason: str | None
    updated_at: int = Field(description="Unix seconds")


class CvmList(Answer):
    cvms: list[Cvm]
    next_cursor: NextCursor = None
