"""The dashboard's writes to an app's device allowlist: add a device, remove one, set allowAnyDevice.

They take the one change flow (`warden.changes`), as `warden allow-devices` does: read the chain and
plan (no-ops are reported, not sent); then either sign with the workspace's own signer when it is the
app's on-chain owner, wait for the receipt and re-read, or otherwise (no signer, or the app is owned by
someone else: another key, or a contract such as a Safe) hand back the change as a Safe Transaction
Builder batch and raw calldata for the owner to sign. Registering an app in a workspace proves nothing
about owning it, so nothing is ever sent for an app the workspace's signer does not own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from warden.chain.app import AppAuth
from warden.chain.inputs import hex0x, parse_bytes32
from warden.chain.signer import Signer
from warden.changes import flow
from warden.changes.asked import allow_any_device_change, device_changes
from warden.changes.plan import Plan
from warden.errors import BadInput, WardenError
from warden.fleet.inventory import Inventory
from warden.fleet.store import AppView, WorkspaceRef
from warden.web.plane import ControlPlane
from warden.web.session import Flash

log = logging.getLogger(__name__)

ChangeKind = Literal["add-device", "remove-device", "allow-any"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("add-device", "remove-device", "allow-any")
RECEIPT_TIMEOUT = 60.0

# one workspace's key, many browser tabs: send one change at a time so nonces never collide
_sending = threading.Lock()


def short_hex(value: str, head: int = 10, tail: int = 8) -> str:
    """`0x1234abcd…89ef` for a long hex string (shown where the full value does not fit)."""
    return value if len(value) <= head + tail + 1 else f"{value[:head]}…{value[-tail:]}"


@dataclass(frozen=True)
class FormChange:
    """One change an operator asked for with a dashboard form (planned by `warden.changes`)."""

    kind: ChangeKind
    device_id: bytes | None = None
    enable: bool | None = None

    @classmethod
    def device(cls, text: str | None, *, add: bool) -> FormChange:
        if not text:
            raise BadInput("no device given")
        return cls("add-device" if add else "remove-device", parse_bytes32(text, "device id"))

    @classmethod
    def allow_any(cls, text: str | None) -> FormChange:
        if text not in ("true", "false"):
            raise BadInput("say whether to turn allowAnyDevice on (true) or off (false)")
        return cls("allow-any", enable=text == "true")

    @classmethod
    def from_form(cls, kind: str | None, device: str | None, enable: str | None) -> FormChange:
        if kind == "allow-any":
            return cls.allow_any(enable)
        if kind in ("add-device", "remove-device"):
            return cls.device(device, add=kind == "add-device")
        raise BadInput(f"unknown change {kind!r}: choose one of {', '.join(CHANGE_KINDS)}")

    def form(self) -> dict[str, str]:
        """The hidden fields that ask for this change again (the Safe batch download re-posts them)."""
        fields: dict[str, str] = {"change": self.kind}
        if self.device_id is not None:
            fields["device_id"] = hex0x(self.device_id)
        if self.enable is not None:
            fields["enable"] = "true" if self.enable else "false"
        return fields


@dataclass
class Prepared:
    """A change read against the chain: its plan (with no change in it when it is a no-op)."""

    change: FormChange
    contract: AppAuth
    owner: str
    title: str  # e.g. "allow device 0x12… (prod6)"
    noop: str  # what to say when there is nothing to send
    plan: Plan
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Offline:
    """A change for the owner to sign elsewhere: calldata per transaction and a Safe batch."""

    prepared: Prepared
    reason: str
    owner_is_contract: bool

    @property
    def calls(self) -> list[dict[str, str]]:
        return flow.Offline(self.prepared.plan, self.prepared.owner, self.owner_is_contract).calls

    def batch(self) -> dict[str, Any]:
        offline = flow.Offline(self.prepared.plan, self.prepared.owner, self.owner_is_contract)
        name = f"warden: {self.prepared.title} on {self.prepared.contract.address}"
        return offline.batch(name, "Prepared by the warden dashboard")


def device_label(device_id: bytes, node: str | None, former_node: str | None = None) -> str:
    """`prod6 (0x12…)`; `prod6's former device 0x12…` for an id the node presented before its current one."""
    text = short_hex(hex0x(device_id))
    if node:
        return f"{node} ({text})"
    return f"{former_node}'s former device {text}" if former_node else f"device {text}"


def prepare(plane: ControlPlane, app: AppView, change: FormChange, inventory: Inventory) -> Prepared:
    """Read what the chain says now and plan the change (skipping it when it is already so).

    `inventory` names devices by their node, or by the node that presented them before its current id.
    """
    contract = plane.app_auth(app)
    owner = contract.owner()
    if change.kind == "allow-any":
        state = "on" if change.enable else "off"
        plan = allow_any_device_change(contract, bool(change.enable))
        notes = ["With Allow any device on, any node the KMS trusts can run this app; the list is ignored."]
        return Prepared(change, contract, owner, f"turn Allow any device {state}",
                        f"Allow any device is already {state}; nothing was sent.", plan,
                        notes if change.enable else [])  # fmt: skip
    assert change.device_id is not None
    add = change.kind == "add-device"
    node = inventory.name_for_device(change.device_id)
    label = device_label(change.device_id, node, inventory.former_name_for_device(change.device_id))
    plan = device_changes(contract, [(change.device_id, node)], add=add)
    notes = []
    if plan.notes and not add:
        notes.append("Allow any device is on, so removing a device has no effect until it is turned off.")
    return Prepared(
        change,
        contract,
        owner,
        f"{'allow' if add else 'disallow'} {label}",
        f"{label} is {'already' if add else 'not'} on the allowlist; nothing was sent.",
        plan,
        notes,
    )


def carry_out(plane: ControlPlane, app: AppView, change: FormChange, workspace: WorkspaceRef) -> Flash | Offline:
    """Make the change with the workspace's signer, or return it for the owner to sign (see the module docstring).

    Every failure comes back as an error Flash saying nothing changed.
    """
    who = workspace.name
    try:
        prepared = prepare(plane, app, change, plane.inventory(workspace))
        if not prepared.plan.changes:
            return Flash("info", prepared.noop)
        signer = plane.signer_for(workspace)
        if signer is None:
            reason = f"The workspace {who} has no signer here, so the control plane signs nothing for it."
            return Offline(prepared, reason, _is_contract(prepared))
        if prepared.owner.lower() != signer.address.lower():
            is_contract = _is_contract(prepared)
            kind = "the contract" if is_contract else "the account"
            suffix = " (a Safe?)" if is_contract else ""
            reason = (
                f"The app is owned by {kind} {prepared.owner}{suffix}, not by this workspace's signer {signer.address}."
            )
            log.warning(
                "workspace %s: %s on %s not signed: the signer does not own the app", who, change.kind, app.address
            )
            return Offline(prepared, reason, is_contract)
        return _send(plane, prepared, signer, who)
    except WardenError as exc:
        log.warning("workspace %s: %s on %s refused: %s", who, change.kind, app.address, exc)
        return Flash("error", f"Could not {change_title(change)}: {exc}")


def change_title(change: FormChange) -> str:
    if change.kind == "allow-any":
        return f"turn Allow any device {'on' if change.enable else 'off'}"
    assert change.device_id is not None
    verb = "allow" if change.kind == "add-device" else "disallow"
    return f"{verb} device {short_hex(hex0x(change.device_id))}"


def offline_batch(
    plane: ControlPlane, app: AppView, change: FormChange, inventory: Inventory
) -> dict[str, Any] | Flash:
    """The Safe Transaction Builder batch for a change, re-planned against the chain now."""
    try:
        prepared = prepare(plane, app, change, inventory)
    except WardenError as exc:
        return Flash("error", f"Could not prepare the batch: {exc}")
    if not prepared.plan.changes:
        return Flash("info", prepared.noop)
    return Offline(prepared, "download", _is_contract(prepared)).batch()


def _is_contract(prepared: Prepared) -> bool:
    return bool(prepared.contract.chain.get_code(prepared.owner))


def _send(plane: ControlPlane, prepared: Prepared, signer: Signer, who: str) -> Flash:
    contract = prepared.contract
    chain = contract.chain
    title = prepared.title[0].upper() + prepared.title[1:]
    with _sending:
        report = flow.send(prepared.plan, signer, flow.Delivery("send", wait=True, timeout=RECEIPT_TIMEOUT))
    (result,) = report.results
    status, tx, error = result.status, result.tx, result.error
    if tx:
        plane.alert_store().record_sent_tx(chain.chain_id, tx, app=contract.address)  # not "out of band"
    log.info("workspace %s: %s on %s: %s (tx %s)", who, prepared.title, contract.address, status, tx)
    if status in ("added", "removed", "set"):
        return Flash("ok", " ".join([f"Done: {prepared.title}.", *prepared.notes]), tx, chain.chain_id)
    if status == "pending":
        text = f"{title}: sent, but no receipt within {RECEIPT_TIMEOUT:g} s. Reload later to see whether it was mined."
        return Flash("warn", text, tx, chain.chain_id)
    if error and error.startswith("mined, but"):
        return Flash("warn", f"{title}: mined, but the chain now says otherwise (changed again since?).", tx,
                     chain.chain_id)  # fmt: skip
    return Flash("error", f"{title} failed: {error or status}. Nothing changed on chain.", tx, chain.chain_id)
