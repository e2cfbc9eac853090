"""The devnet's demo fleet, as in the field report: nodes prod5, prod6, prod9 (one platform) and hosted
(self-hosted); app `shared-key-demo` with CVMs on prod5, prod6 and hosted, each deployed through a
different path (so each has its own app-compose.json and compose hash); prod9 starts empty.

Where things live under the devnet's home:
    pki/             the mock Intel PKI (root CA the KMS and control plane trust)
    nodes/NAME/      each simulated node (PPID, PCK key 0600)
    kms/             the KMS root keys (0600)
    cvms/NAME/app-compose.json   the exact manifest each CVM measured
    sockets/NAME.sock            each CVM's dstack guest API (directory 0700, sockets 0600; see guest_socket)
    warden.db        the control plane's inventory (SQLite)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from warden.chain.signer import signer_from_key
from warden.compose.hashing import compose_hash
from warden.compose.platforms import SHIPPED, matrix
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.devnet.state import DevnetCvm, DevnetState, save_state
from warden.errors import BadInput
from warden.fleet.store import Fleet, NotFound, WorkspaceRef
from warden.fleet.workspace_signers import SECRET_KEY_FILE, SecretKey, assign_signer
from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
from warden.kms.service import KmsSettings
from warden.tee.collateral import collateral_json
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki
from warden.web.plane import ControlPlane

DEMO_APP = "shared-key-demo"
WORKSPACE = "devnet"
OS_IMAGE_HASH = hashlib.sha256(b"warden devnet: dstack-0.5.7 OS image").digest()
KEY_PROVIDER = b'{"type":"kms","id":"warden-devnet"}'
DEMO_NODES: tuple[tuple[str, str], ...] = (
    ("prod5", "us-east"),
    ("prod6", "us-east"),
    ("prod9", "us-west"),
    ("hosted", "self-hosted"),
)
DEMO_DOCKER_COMPOSE = """\
services:
  app:
    image: ghcr.io/warden-devnet/shared-key-demo:1.0
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock
    environment:
      - KEY_PATH=/shared-demo
"""
# (CVM, node, deploy path): one docker-compose file, three platforms, three manifests
DEMO_CVMS: tuple[tuple[str, str, str], ...] = (
    ("shared-key-demo-1", "prod5", "phala-cli"),
    ("shared-key-demo-2", "prod6", "phala-api"),
    ("shared-key-demo-selfhost", "hosted", "selfhost-vmm"),
)
# the longest path a unix socket can have (sun_path is 108 bytes with its terminating NUL)
MAX_SOCKET_PATH = 107
# the CSR API versions a KMS of each release accepts (0.5.6 introduced v2)
KMS_RELEASES: dict[str, tuple[int, ...]] = {"0.5.4": (1,), "0.5.7": (1, 2)}


def kms_settings(version: str) -> KmsSettings:
    if version not in KMS_RELEASES:
        raise BadInput(f"unknown KMS version {version!r}: choose one of {', '.join(KMS_RELEASES)}")
    return KmsSettings(version=version, csr_api_versions=KMS_RELEASES[version])


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    def node(self, name: str) -> Path:
        return self.home / "nodes" / name

    @property
    def kms_keys(self) -> Path:
        return self.home / "kms"

    @property
    def kms_version(self) -> Path:
        return self.home / "kms-version"

    @property
    def database(self) -> Path:
        return self.home / "warden.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    def manifest(self, cvm: str) -> Path:
        return self.home / "cvms" / cvm / "app-compose.json"

    @property
    def sockets(self) -> Path:
        return self.home / "sockets"

    def guest_socket(self, cvm: str) -> Path | None:
        """Where CVM's guest API listens on a unix socket: under the home, or, when that path is too long for a
        socket, in a directory of this home's own under $XDG_RUNTIME_DIR (else /tmp); None if even that is."""
        for directory in (self.sockets, self.short_sockets):
            path = directory / f"{cvm}.sock"
            if len(str(path).encode()) <= MAX_SOCKET_PATH:
                return path
        return None

    @property
    def short_sockets(self) -> Path:
        tag = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"warden-{os.getuid()}-{tag}"

    @property
    def cache(self) -> Path:
        return self.home / "cache"

    @property
    def secret_key(self) -> Path:
        return self.home / SECRET_KEY_FILE


def load_pki(paths: Paths) -> MockIntelPki:
    return MockIntelPki.load_or_create(paths.pki)


def load_node(paths: Paths, name: str) -> SimNode:
    regions = dict(DEMO_NODES)
    if not paths.node(name).exists() and name not in regions:
        raise BadInput(f"unknown devnet node {name!r}: the devnet has {', '.join(regions)}")
    return SimNode.load_or_create(paths.node(name), name, regions.get(name, "devnet"))


def release_manifest(platform: str, docker_compose: str, app_name: str = DEMO_APP) -> bytes:
    """The exact app-compose.json a deploy path writes for this docker-compose file."""
    platforms = [p for p in SHIPPED if p.name == platform]
    if not platforms:
        raise BadInput(f"unknown deploy path {platform!r}: choose one of {', '.join(p.name for p in SHIPPED)}")
    (row,) = matrix(docker_compose, app_name, platforms)
    return row.manifest


def write_manifest(paths: Paths, cvm: str, manifest: bytes) -> bytes:
    """Store the manifest a CVM runs; its compose hash."""
    path = paths.manifest(cvm)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)
    return compose_hash(manifest)


def read_manifest(paths: Paths, cvm: str) -> bytes:
    try:
        return paths.manifest(cvm).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"CVM {cvm!r} has no manifest at {paths.manifest(cvm)}: is it a devnet CVM?") from None


def set_kms_version(paths: Paths, state: DevnetState, version: str) -> KmsSettings:
    """Make the running devnet KMS act as that dstack release (it re-reads the file on its next request)."""
    settings = kms_settings(version)
    paths.kms_version.write_text(version + "\n")
    state.kms_version = version
    save_state(state, paths.home)
    return settings


def cvm_statuses(paths: Paths) -> dict[str, str]:
    """Each demo CVM's last status in the control plane's inventory (empty before the first `up`)."""
    if not paths.database.exists():
        return {}
    fleet = Fleet.open(paths.database_url)
    try:
        return {c.name: c.status for c in fleet.cvms(fleet.workspace(WORKSPACE))}
    except NotFound:
        return {}
    finally:
        fleet.close()


def attestation_policy(pki: MockIntelPki) -> AttestationPolicy:
    """Quotes verify against the devnet's mock Intel root, exactly as real ones against Intel's."""
    return AttestationPolicy(collateral=fixed_collateral(collateral_json(pki)), root_ca_der=pki.root_ca_der)


def control_plane(paths: Paths, state: DevnetState, pki: MockIntelPki) -> ControlPlane:
    """The devnet's control plane over its inventory; its workspace's signer is the devnet owner key."""
    secret = SecretKey.load(paths.secret_key)
    return ControlPlane(
        Fleet.open(paths.database_url),
        [state.rpc_url],
        attestation_policy(pki),
        secret,
        paths.cache,
        session_secret=secret.derive("dashboard sessions"),
    )


def workspace(plane: ControlPlane) -> WorkspaceRef:
    return plane.fleet.workspace(WORKSPACE)


def demo_cvms(app: str = DEMO_APP) -> dict[str, DevnetCvm]:
    return {
        name: DevnetCvm(node, app, platform, instance_id=hashlib.sha256(name.encode()).digest()[:20].hex())
        for name, node, platform in DEMO_CVMS
    }


def seed_inventory(plane: ControlPlane, paths: Paths, state: DevnetState, nodes: dict[str, SimNode],
                   pki: MockIntelPki, token: str) -> None:  # fmt: skip
    """Workspace (with the devnet's token), nodes with identities from their own quotes, the app, its CVMs."""
    ref = plane.fleet.ensure_workspace(WORKSPACE, token)
    assert plane.secret_key is not None
    assign_signer(plane.fleet, plane.secret_key, ref, signer_from_key(DEV_PRIVATE_KEY, "devnet"))
    for name, node in nodes.items():
        plane.fleet.add_node(name, region=node.region, tee_version="tdx-1.5")
        plane.fleet.grant(ref, name)
        plane.record_quote(ref, name, node.host_quote(pki))
    for app_name, address in state.apps.items():
        plane.fleet.register_app(ref, address, chain_id=state.chain_id, kms_contract=state.kms, name=app_name)
    known = {c.name for c in plane.fleet.cvms(ref)}
    for name, cvm in state.cvms.items():
        if name not in known:
            manifest = read_manifest(paths, name)
            plane.fleet.add_cvm(
                ref, name, app=state.apps[cvm.app], node=cvm.node, instance_id=bytes.fromhex(cvm.instance_id),
                compose_hash=compose_hash(manifest), status="created",
            )  # fmt: skip
