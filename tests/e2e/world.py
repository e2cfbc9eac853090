"""A devnet in a test: chain + DstackKms + an app, a mock Intel PKI, simulated nodes, a KMS over HTTP."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.chain import send
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.kms.client import KmsClient
from warden.kms.service import KmsService
from warden.tee.cvm import SimCvm
from warden.tee.guest import Guest
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki

OS_IMAGE = hashlib.sha256(b"dstack-0.5.7 image").digest()
# one docker-compose file, two platforms: each writes a different app-compose.json, hence two hashes
COMPOSE_PLATFORM_A = hashlib.sha256(b'{"name":"shared-key-demo","runner":"docker-compose"}').digest()
COMPOSE_PLATFORM_B = hashlib.sha256(b'{"name":"shared-key-demo","runner":"docker-compose","features":[]}').digest()
KEY_PROVIDER = b'{"name":"kms","id":"devnet"}'


@dataclass
class World:
    chain: Chain
    owner: Signer
    kms: KmsRegistry
    app: AppAuth
    pki: MockIntelPki
    service: KmsService
    kms_url: str
    home: Path
    nodes: dict[str, SimNode] = field(default_factory=dict)

    def node(self, name: str) -> SimNode:
        if name not in self.nodes:
            self.nodes[name] = SimNode.load_or_create(self.home / "nodes" / name, name, "devnet")
        return self.nodes[name]

    def cvm(self, node: str, *, app: bytes | None = None, compose_hash: bytes = COMPOSE_PLATFORM_A,
            instance: int = 1) -> SimCvm:  # fmt: skip
        return SimCvm(
            self.node(node), self.pki,
            app_id=app if app is not None else bytes.fromhex(self.app.address[2:]),
            compose_hash=compose_hash, instance_id=instance.to_bytes(20, "big"),
            os_image_hash=OS_IMAGE, key_provider=KEY_PROVIDER,
        )  # fmt: skip

    def guest(
        self, cvm: SimCvm, *, version: str = "0.5.7", fallback_to_v1: bool = False, url: str | None = None
    ) -> Guest:
        return Guest(cvm, KmsClient(url or self.kms_url), version=version, fallback_to_v1=fallback_to_v1)

    def allow_device(self, node: str) -> None:
        send(self.chain, self.owner, self.app.add_device(self.node(node).device_id))
