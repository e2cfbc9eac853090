"""The devnet's runbook handles: boot or stop a demo CVM, sign with its shared key, update a node's
firmware. Each is one library call behind one `warden devnet …` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.chain.inputs import hex0x
from warden.chain.signer import eth_account_class
from warden.compose.hashing import compose_hash
from warden.compose.manifest import load_manifest
from warden.devnet.fleet import (
    KEY_PROVIDER,
    OS_IMAGE_HASH,
    Paths,
    control_plane,
    load_node,
    load_pki,
    read_manifest,
    release_manifest,
    workspace,
    write_manifest,
)
from warden.devnet.replicas import adopt_replica
from warden.devnet.state import DevnetCvm, DevnetState, save_state
from warden.errors import BadInput, OperationFailed
from warden.fleet.store import IdentityUpdate
from warden.kms.client import KmsClient, KmsRefused
from warden.tee.cvm import SimCvm
from warden.tee.guest import Guest, csr_api_version

SHARED_KEY_PATH = "/shared-demo"
SHARED_KEY_PURPOSE = "ethereum"


@dataclass(frozen=True)
class BootReport:
    cvm: str
    node: str
    device_id: bytes
    compose_hash: bytes
    guest_version: str
    kms_version: str
    keys: bool
    reason: str | None  # the KMS's refusal, verbatim
    gateway: bool  # whether the manifest enables the gateway (else no certificate is asked for)
    certificate: bool
    certificate_error: str | None
    csr_api_version: int | None

    @property
    def ok(self) -> bool:
        return self.keys and (self.certificate or not self.gateway)

    def as_json(self) -> dict[str, Any]:
        return {
            "cvm": self.cvm,
            "node": self.node,
            "device_id": hex0x(self.device_id),
            "compose_hash": hex0x(self.compose_hash),
            "guest_version": self.guest_version,
            "kms_version": self.kms_version,
            "booted": self.ok,
            "keys": self.keys,
            "reason": self.reason,
            "gateway": self.gateway,
            "gateway_certificate": self.certificate,
            "certificate_error": self.certificate_error,
            "csr_api_version": self.csr_api_version,
        }


def devnet_cvm(paths: Paths, state: DevnetState, name: str) -> DevnetCvm:
    """A demo CVM, or a replica `warden cvms replicate` placed (learnt from the inventory on first use)."""
    cvm = state.cvms.get(name) or adopt_replica(paths, state, name)
    if cvm is None:
        raise BadInput(
            f"unknown devnet CVM {name!r}: the devnet has {', '.join(state.cvms) or 'none'} "
            "(and the replicas placed with `warden cvms replicate`)"
        )
    return cvm


def _require_services(state: DevnetState) -> str:
    if not state.kms_url:
        raise OperationFailed("the devnet's KMS is not running: run `warden devnet up`")
    return state.kms_url


def cvm_guest(paths: Paths, state: DevnetState, name: str) -> Guest:
    """The guest the demo CVM `name` runs now (its node, manifest and guest version), not booted yet."""
    cvm = devnet_cvm(paths, state, name)
    pki = load_pki(paths)
    node = load_node(paths, cvm.node)
    manifest = read_manifest(paths, name)
    sim = SimCvm(
        node, pki, app_id=bytes.fromhex(state.apps[cvm.app][2:]), compose_hash=compose_hash(manifest),
        instance_id=bytes.fromhex(cvm.instance_id), os_image_hash=OS_IMAGE_HASH, key_provider=KEY_PROVIDER,
    )  # fmt: skip
    return Guest(sim, KmsClient(_require_services(state)), version=cvm.guest_version,
                 fallback_to_v1=cvm.fallback_to_v1, gateway=gateway_enabled(manifest))  # fmt: skip


def gateway_enabled(manifest: bytes) -> bool:
    """Whether the CVM's app-compose.json turns the gateway on (`tproxy_enabled` is its older name)."""
    fields = load_manifest(manifest).fields
    return bool(fields.get("gateway_enabled", fields.get("tproxy_enabled", False)))


def boot(
    paths: Paths,
    state: DevnetState,
    name: str,
    *,
    docker_compose: str | None = None,
    guest_version: str | None = None,
    fallback_to_v1: bool | None = None,
) -> BootReport:
    """(Re)boot a demo CVM: ask the KMS for its keys and a gateway certificate; record the outcome.

    `docker_compose` deploys a new release first (the CVM's deploy path writes its manifest);
    `guest_version` / `fallback_to_v1` change the guest it runs (kept for later boots).
    """
    cvm = devnet_cvm(paths, state, name)
    if guest_version is not None:
        csr_api_version(guest_version)  # validates
        cvm.guest_version = guest_version
    if fallback_to_v1 is not None:
        cvm.fallback_to_v1 = fallback_to_v1
    if docker_compose is not None:
        write_manifest(paths, name, release_manifest(cvm.platform, docker_compose))
    save_state(state, paths.home)
    guest = cvm_guest(paths, state, name)
    reason = None
    try:
        guest.boot()
    except KmsRefused as exc:
        reason = str(exc)
    finally:
        guest.kms.close()
    report = BootReport(
        name, cvm.node, guest.cvm.node.device_id, guest.cvm.compose_hash, cvm.guest_version, state.kms_version,
        keys=reason is None, reason=reason, gateway=guest.gateway, certificate=guest.certificate is not None,
        certificate_error=guest.certificate_error,
        csr_api_version=guest.certificate.csr_api_version if guest.certificate else None,
    )  # fmt: skip
    _record(paths, state, report)
    return report


def stop(paths: Paths, state: DevnetState, name: str) -> None:
    """Stop a demo CVM: the inventory says `stopped`, and its guest API hands out nothing until it boots again."""
    devnet_cvm(paths, state, name)
    plane = control_plane(paths, state, load_pki(paths))
    try:
        plane.fleet.set_cvm_status(workspace(plane), name, "stopped", "stopped with `warden devnet cvm stop`")
    finally:
        plane.close()


def _record(paths: Paths, state: DevnetState, report: BootReport) -> None:
    """Tell the control plane how the boot went (what the dashboard and `warden cvms ls` show)."""
    device_allowed: bool | None = True
    if report.keys:
        status = "running"
        why = None if report.ok else f"no gateway certificate: {report.certificate_error}"
    else:
        status, why = "boot-failed", report.reason
        device_allowed = False if report.reason and "device not allowed" in report.reason.lower() else None
    plane = control_plane(paths, state, load_pki(paths))
    try:
        plane.fleet.set_cvm_status(
            workspace(plane), report.cvm, status, why, device_allowed=device_allowed, compose_hash=report.compose_hash
        )
    finally:
        plane.close()


def sign(paths: Paths, state: DevnetState, name: str, message: str) -> dict[str, str]:
    """Boot the CVM, derive getKey("/shared-demo", "ethereum") and sign `message` (EIP-191) with it."""
    guest = cvm_guest(paths, state, name)
    try:
        guest.boot()
    except KmsRefused as exc:
        raise OperationFailed(f"{name} cannot get its keys: {exc}") from None
    finally:
        guest.kms.close()
    key = guest.get_key(SHARED_KEY_PATH, SHARED_KEY_PURPOSE).key
    account = eth_account_class().from_key(key)
    from eth_account.messages import encode_defunct  # after eth_account_class(), which tames py_ecc's import

    signed = account.sign_message(encode_defunct(text=message))
    return {"address": account.address, "signature": hex0x(bytes(signed.signature))}


def update_firmware(paths: Paths, state: DevnetState, node_name: str) -> IdentityUpdate:
    """A BIOS/microcode update: the node gets a new PPID (so a new device id) and its agent posts a fresh
    quote to the control plane, which records the change and flags the CVMs it strands."""
    if node_name not in state.nodes:
        raise BadInput(f"unknown devnet node {node_name!r}: the devnet has {', '.join(state.nodes)}")
    pki = load_pki(paths)
    node = load_node(paths, node_name)
    node.rotate_ppid()
    plane = control_plane(paths, state, pki)
    try:
        return plane.record_quote(workspace(plane), node_name, node.host_quote(pki))
    finally:
        plane.close()
