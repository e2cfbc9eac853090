"""Alert kinds and the rules that raise them, given an app's on-chain state and where its CVMs run.

Pure: no I/O. `AppChainState` is folded from the contract's own events (read by `warden.watch.chain_state`);
placements and node identities come from the inventory. Every alert has a stable id (a hash of its kind,
app, subject and the identity or transaction it is about), so one problem is one alert however often it is
seen, and a new device id or a new transaction is a new alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from warden.chain.abi import DecodedLog
from warden.hexutil import hex0x

AlertKind = Literal["drift", "compose-hash-not-allowed", "out-of-band-change", "allow-any-device-on", "ownership-moved"]
ALERT_KINDS: tuple[AlertKind, ...] = (
    "drift",
    "compose-hash-not-allowed",
    "out-of-band-change",
    "allow-any-device-on",
    "ownership-moved",
)
ZERO_ADDRESS = "0x" + "00" * 20
# what a CVM is doing when it matters that its next boot is refused
LIVE_CVM_STATUSES = frozenset({"running", "starting"})
# the contract's events that change who may boot where (read together: one cache entry per app)
WATCHED_EVENTS = (
    "AllowAnyDeviceSet",
    "ComposeHashAdded",
    "ComposeHashRemoved",
    "DeviceAdded",
    "DeviceRemoved",
    "OwnershipTransferred",
)
ALLOWLIST_EVENTS = frozenset(
    {"AllowAnyDeviceSet", "ComposeHashAdded", "ComposeHashRemoved", "DeviceAdded", "DeviceRemoved"}
)


def alert_id(kind: str, chain_id: int, app: str, subject: str, identity: str) -> str:
    """The stable id of one alert: the same problem seen again has the same id (so it is sent once)."""
    text = "\x1f".join((kind, str(chain_id), app.lower(), subject, identity.lower()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AppRef:
    """A registered app as alerts name it."""

    address: str
    chain_id: int
    name: str | None

    @property
    def label(self) -> str:
        return self.name or self.address

    @property
    def cli_name(self) -> str:
        """How a command line names this app (its address: unambiguous in every workspace)."""
        return self.address


@dataclass(frozen=True)
class AppChainState:
    """What the app's contract allows at block `head`, and the events that made it so (oldest first)."""

    head: int
    devices: frozenset[bytes]
    compose_hashes: frozenset[bytes]
    allow_any_device: bool
    owner: str
    events: tuple[DecodedLog, ...] = ()


@dataclass(frozen=True)
class Placement:
    """One CVM of the app: the node it runs on and that node's current device id (None: never attested)."""

    cvm: str
    node: str
    device_id: bytes | None
    compose_hash: bytes | None
    status: str


@dataclass(frozen=True)
class Alert:
    id: str
    kind: AlertKind
    app: AppRef
    subject: str  # the node, CVM or transaction the alert is about
    message: str  # one sentence naming everything needed to act
    fix: str | None  # the command (or step) that resolves it
    details: dict[str, Any] = field(default_factory=dict)
    # state alerts end when the condition is gone (a drift fixed); event alerts are about a past transaction
    ongoing: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "app": self.app.address,
            "app_name": self.app.name,
            "chain_id": self.app.chain_id,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
        }


def stranded(state: AppChainState, placements: Sequence[Placement]) -> dict[tuple[str, bytes], list[str]]:
    """(node, its current device id) → the app's live CVMs on it, for every node whose id the app does not allow."""
    if state.allow_any_device:
        return {}
    found: dict[tuple[str, bytes], list[str]] = {}
    for p in placements:
        if p.status in LIVE_CVM_STATUSES and p.device_id is not None and p.device_id not in state.devices:
            found.setdefault((p.node, p.device_id), []).append(p.cvm)
    return found


def drift_alerts(app: AppRef, state: AppChainState, placements: Sequence[Placement]) -> list[Alert]:
    """A node running one of the app's CVMs whose current device id the app does not allow: its CVMs will be
    refused keys at their next boot. One alert per node and device id."""
    alerts = []
    for (node, device), cvms in sorted(stranded(state, placements).items()):
        device_hex = hex0x(device)
        fix = f"warden allow-devices add {app.cli_name} {device_hex} --wait"
        message = (
            f"drift: node {node} now has device id {device_hex}, which app {app.label} does not allow; "
            f"{', '.join(sorted(cvms))} will be refused keys at the next boot. Fix: {fix}"
        )
        alerts.append(
            Alert(
                alert_id("drift", app.chain_id, app.address, node, device_hex),
                "drift",
                app,
                node,
                message,
                fix,
                {"node": node, "device_id": device_hex, "cvms": sorted(cvms)},
                ongoing=True,
            )
        )
    return alerts


def compose_hash_alerts(app: AppRef, state: AppChainState, placements: Sequence[Placement]) -> list[Alert]:
    """A running CVM whose compose hash the app no longer allows (it will not get keys after a reboot)."""
    alerts = []
    for p in sorted(placements, key=lambda p: p.cvm):
        if p.status not in LIVE_CVM_STATUSES or p.compose_hash is None or p.compose_hash in state.compose_hashes:
            continue
        hash_hex = hex0x(p.compose_hash)
        fix = f"allow compose hash {hash_hex} again (`warden apply` with it in the policy), or redeploy {p.cvm}"
        message = (
            f"CVM {p.cvm} on node {p.node} runs compose hash {hash_hex}, which app {app.label} no longer allows; "
            f"it will be refused keys at the next boot. Fix: {fix}"
        )
        alerts.append(
            Alert(
                alert_id("compose-hash-not-allowed", app.chain_id, app.address, p.cvm, hash_hex),
                "compose-hash-not-allowed",
                app,
                p.cvm,
                message,
                fix,
                {"cvm": p.cvm, "node": p.node, "compose_hash": hash_hex},
                ongoing=True,
            )
        )
    return alerts


def allow_any_device_alerts(app: AppRef, state: AppChainState) -> list[Alert]:
    """allowAnyDevice is on: any machine may boot the app. One alert per transaction that switched it on."""
    if not state.allow_any_device:
        return []
    switched = [e for e in state.events if e.event == "AllowAnyDeviceSet" and bool(e.args["allowAny"])]
    where = switched[-1] if switched else None
    identity = f"{where.tx_hash}:{where.log_index}" if where else f"head:{state.head}"
    fix = f"warden allow-devices disallow-any {app.cli_name}"
    message = (
        f"allowAnyDevice is on for app {app.label}: any machine may now boot it and get its keys"
        + (f" (transaction {where.tx_hash}, block {where.block_number})" if where else "")
        + f". Fix: {fix}"
    )
    details = {"tx": where.tx_hash if where else None, "block": where.block_number if where else state.head}
    return [
        Alert(
            alert_id("allow-any-device-on", app.chain_id, app.address, "allowAnyDevice", identity),
            "allow-any-device-on",
            app,
            "allowAnyDevice",
            message,
            fix,
            details,
            ongoing=True,
        )
    ]


def ownership_alerts(app: AppRef, state: AppChainState, after_block: int) -> list[Alert]:
    """The app's ownership moved (OwnershipTransferred after `after_block`, not the initial one)."""
    alerts = []
    for e in state.events:
        if e.event != "OwnershipTransferred" or e.block_number <= after_block:
            continue
        old, new = str(e.args["previousOwner"]), str(e.args["newOwner"])
        if old.lower() == ZERO_ADDRESS:
            continue
        message = (
            f"ownership of app {app.label} moved from {old} to {new} (transaction {e.tx_hash}, block "
            f"{e.block_number}); only {new} can change its allowlists now"
        )
        alerts.append(
            Alert(
                alert_id("ownership-moved", app.chain_id, app.address, new, f"{e.tx_hash}:{e.log_index}"),
                "ownership-moved",
                app,
                new,
                message,
                None,
                {"previous_owner": old, "new_owner": new, "tx": e.tx_hash, "block": e.block_number},
            )
        )
    return alerts


def out_of_band_alerts(
    app: AppRef, state: AppChainState, after_block: int, sent_by_warden: Iterable[str]
) -> list[Alert]:
    """Allowlist changes (devices, compose hashes, allowAnyDevice) after `after_block` in transactions warden
    did not send: someone changed the app's policy with another tool or key."""
    ours = {tx.lower() for tx in sent_by_warden}
    alerts = []
    for e in state.events:
        if e.event not in ALLOWLIST_EVENTS or e.block_number <= after_block or e.tx_hash.lower() in ours:
            continue
        what = _change_text(e)
        message = (
            f"app {app.label}: {what} in transaction {e.tx_hash} (block {e.block_number}), which was not made "
            "through warden; check who sent it (`warden allow-devices history` shows the trail)"
        )
        alerts.append(
            Alert(
                alert_id("out-of-band-change", app.chain_id, app.address, e.tx_hash, f"{e.tx_hash}:{e.log_index}"),
                "out-of-band-change",
                app,
                e.tx_hash,
                message,
                f"warden allow-devices history {app.cli_name}",
                {"event": e.event, "tx": e.tx_hash, "block": e.block_number} | _change_args(e),
            )
        )
    return alerts


def _change_args(event: DecodedLog) -> dict[str, Any]:
    if "deviceId" in event.args:
        return {"device_id": hex0x(bytes(event.args["deviceId"]))}
    if "composeHash" in event.args:
        return {"compose_hash": hex0x(bytes(event.args["composeHash"]))}
    return {"enabled": bool(event.args["allowAny"])}


def _change_text(event: DecodedLog) -> str:
    args = _change_args(event)
    texts = {
        "DeviceAdded": f"device {args.get('device_id')} was allowed",
        "DeviceRemoved": f"device {args.get('device_id')} was removed",
        "ComposeHashAdded": f"compose hash {args.get('compose_hash')} was allowed",
        "ComposeHashRemoved": f"compose hash {args.get('compose_hash')} was removed",
    }
    if event.event == "AllowAnyDeviceSet":
        return f"allowAnyDevice was switched {'on' if args['enabled'] else 'off'}"
    return texts[event.event]


def app_alerts(
    app: AppRef,
    state: AppChainState,
    placements: Sequence[Placement],
    *,
    baseline_block: int,
    sent_by_warden: Iterable[str],
) -> list[Alert]:
    """Every alert the app raises now. Events at or before `baseline_block` (when warden started watching the
    app) are history, not news: they raise no ownership or out-of-band alert."""
    return [
        *drift_alerts(app, state, placements),
        *compose_hash_alerts(app, state, placements),
        *allow_any_device_alerts(app, state),
        *ownership_alerts(app, state, baseline_block),
        *out_of_band_alerts(app, state, baseline_block, sent_by_warden),
    ]


def drifted_nodes(state: AppChainState, placements: Sequence[Placement]) -> int:
    """How many nodes run the app's CVMs on a device id it does not allow (the metric)."""
    return len({node for node, _device in stranded(state, placements)})


def fold_events(events: Sequence[DecodedLog]) -> tuple[frozenset[bytes], frozenset[bytes], bool | None, str | None]:
    """The devices, compose hashes, allowAnyDevice and owner the events leave (None: never set by an event)."""
    devices: set[bytes] = set()
    hashes: set[bytes] = set()
    allow_any: bool | None = None
    owner: str | None = None
    for e in events:
        if e.event == "DeviceAdded":
            devices.add(bytes(e.args["deviceId"]))
        elif e.event == "DeviceRemoved":
            devices.discard(bytes(e.args["deviceId"]))
        elif e.event == "ComposeHashAdded":
            hashes.add(bytes(e.args["composeHash"]))
        elif e.event == "ComposeHashRemoved":
            hashes.discard(bytes(e.args["composeHash"]))
        elif e.event == "AllowAnyDeviceSet":
            allow_any = bool(e.args["allowAny"])
        elif e.event == "OwnershipTransferred":
            owner = str(e.args["newOwner"])
    return frozenset(devices), frozenset(hashes), allow_any, owner
