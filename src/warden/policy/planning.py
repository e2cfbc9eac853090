"""A policy against the chain: what each app (and the KMS) holds now, what the policy wants, and the Plan
that gets from one to the other.

Devices named by node resolve to the node's *current* device id, so a node whose id changed (a firmware
update) shows up as an add of its new id, beside its former id on chain (labelled `prod6 (former id)`,
removed only with `prune`). Entries on chain the policy does not name are shown, and removed only with
`prune`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warden.chain.allowlist import allow_any_device_spec, compose_hash_spec, device_spec, os_image_spec
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import parse_bytes32
from warden.chain.kms import KmsRegistry
from warden.chain.logcache import ScanCache
from warden.changes.plan import Plan, plan_flag, plan_set
from warden.errors import BadInput
from warden.fleet.compose_hashes import compose_hashes_of, list_compose_hashes
from warden.fleet.devices import list_devices, resolve_devices
from warden.fleet.inventory import Inventory
from warden.policy.file import AppPolicy, PolicyFile

ResolveApp = Callable[[AppPolicy], str]  # an app's table → its DstackApp address


@dataclass
class Section:
    """One contract's part of the plan: an app (by its policy name) or the KMS."""

    name: str
    contract: str
    plan: Plan

    def as_json(self) -> dict[str, Any]:
        changes = self.plan.changes
        return {
            "name": self.name,
            "contract": self.contract,
            "in_sync": not changes,
            "changes": [c.as_json() for c in changes],
            "not_named": [u.as_json() for u in self.plan.unchanged if u.state == "not-named"],
            "unchanged": sum(1 for u in self.plan.unchanged if u.state != "not-named"),
            "notes": self.plan.notes,
        }


@dataclass
class PolicyPlan:
    policy: PolicyFile
    chain_id: int
    prune: bool
    sections: list[Section]

    @property
    def plan(self) -> Plan:
        """Every section's changes as one plan (what `apply` carries out)."""
        merged = Plan()
        for section in self.sections:
            merged.extend(section.plan)
        return merged

    @property
    def in_sync(self) -> bool:
        return not any(s.plan.changes for s in self.sections)

    def summary(self) -> dict[str, int]:
        counts = {"add": 0, "remove": 0, "set": 0, "not_named": 0}
        for section in self.sections:
            for change in section.plan.changes:
                counts[change.action] += 1
            counts["not_named"] += sum(1 for u in section.plan.unchanged if u.state == "not-named")
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.policy.path),
            "chain_id": self.chain_id,
            "prune": self.prune,
            "in_sync": self.in_sync,
            "summary": self.summary(),
            "sections": [s.as_json() for s in self.sections],
        }


@dataclass(frozen=True)
class PolicySources:
    """What resolving a policy needs besides the chain: node names, app references, the KMS and the log cache."""

    inventory: Inventory
    inventory_source: str
    resolve_app: ResolveApp
    kms_address: Callable[[str | None], str]  # the [kms] address (or None) → the DstackKms to use
    cache: ScanCache | None


def plan_policy(policy: PolicyFile, chain: Chain, sources: PolicySources, *, prune: bool) -> PolicyPlan:
    """Resolve every name first (a bad one is refused before the chain is read), then read and plan."""
    wanted = [(app, _wanted_app(app, policy, sources)) for app in policy.apps]
    sections = [_app_section(app, chain, want, sources, prune) for app, want in wanted]
    if policy.kms is not None and policy.kms.os_images is not None:
        images: list[tuple[bytes, str | None]] = [
            (parse_bytes32(i, "OS image hash in [kms] os_images"), None) for i in policy.kms.os_images
        ]
        registry = KmsRegistry.open(chain, sources.kms_address(policy.kms.address))
        current = [(i.os_image_hash, None) for i in registry.os_images(sources.cache) if i.allowed]
        plan = plan_set(os_image_spec(registry), _unique(images, "OS image hash", "[kms]"), current, prune=prune)
        sections.append(Section("kms", registry.address, plan))
    return PolicyPlan(policy, chain.chain_id, prune, sections)


@dataclass(frozen=True)
class _Wanted:
    address: str
    devices: list[tuple[bytes, str | None]] | None
    compose_hashes: list[tuple[bytes, str | None]] | None


def _wanted_app(app: AppPolicy, policy: PolicyFile, sources: PolicySources) -> _Wanted:
    where = f"[apps.{app.name}]"
    devices = None
    if app.devices is not None:
        targets = resolve_devices(app.devices, sources.inventory, sources.inventory_source)
        devices = [(t.device_id, t.node) for t in targets]
    hashes = None
    if app.compose_hashes is not None:
        found = compose_hashes_of(app.compose_hashes, policy.base)
        hashes = _unique([(h, s) for h, s in found], "compose hash", where)
    return _Wanted(sources.resolve_app(app), devices, hashes)


def _app_section(app: AppPolicy, chain: Chain, want: _Wanted, sources: PolicySources, prune: bool) -> Section:
    contract = AppAuth.open(chain, want.address)
    plan = Plan()
    if app.allow_any_device is not None:
        plan.extend(plan_flag(allow_any_device_spec(contract), app.allow_any_device, why="named in the policy"))
    if want.devices is not None:
        allowlist = list_devices(contract, sources.inventory, sources.cache)
        current = [(d.device_id, d.label) for d in allowlist.devices]
        plan.extend(plan_set(device_spec(contract), want.devices, current, prune=prune))
        flag_on = allowlist.allow_any_device if app.allow_any_device is None else app.allow_any_device
        if flag_on:
            plan.notes.append(f"allowAnyDevice is (or stays) on for {app.name}: its device list is not enforced")
    if want.compose_hashes is not None:
        members, _ = list_compose_hashes(contract, sources.cache)
        current_hashes: list[tuple[bytes, str | None]] = [(m.id, None) for m in members]
        plan.extend(plan_set(compose_hash_spec(contract), want.compose_hashes, current_hashes, prune=prune))
    return Section(app.name, contract.address, plan)


def _unique(items: list[tuple[bytes, str | None]], what: str, where: str) -> list[tuple[bytes, str | None]]:
    seen: dict[bytes, str | None] = {}
    for value, label in items:
        if value in seen:
            first, second = seen[value] or "hex", label or "hex"
            raise BadInput(f"{where}: {what} 0x{value.hex()} is named twice ({first} and {second})")
        seen[value] = label
    return items
