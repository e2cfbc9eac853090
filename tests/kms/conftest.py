"""Fixtures for the auth webhook: one DstackKms per module, the webhook served over real HTTP in front of it.

The webhook reaches anvil through a FlakyProxy, so a test can count the chain requests a call made and
inject RPC faults. The proxy URL carries a fake API key in its path and query: nothing may ever show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.chain import send
from tests.support.cli import isolate
from tests.support.flaky_proxy import FlakyProxy
from tests.support.http_server import serve
from warden.chain.connection import Chain
from warden.chain.deploy import KmsDeployment, deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.rpc import RpcClient
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil
from warden.kms.authorization import Authorizer
from warden.kms.webhook import create_webhook_app

GATEWAY_APP_ID = "0x5e0fe0f06a1c91aa0ed29e1e2a1cd1b48c6c7c1b"
ALLOWED_OS_IMAGE = bytes.fromhex("0e" * 32)
SECRET = "S3CRET-api-key-0123456789"  # must never appear in a response or a log line


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited configuration and no devnet (for the CLI tests)."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def auth_deployment(chain: Chain, owner: Signer) -> KmsDeployment:
    """A DstackKms with a gateway app id and one allowed OS image, shared by a module's tests."""
    deployment = deploy_kms(chain, owner)
    registry = KmsRegistry.open(chain, deployment.kms)
    send(chain, owner, registry.request("setGatewayAppId", GATEWAY_APP_ID))
    send(chain, owner, registry.add_os_image(ALLOWED_OS_IMAGE))
    return deployment


@pytest.fixture(scope="module")
def auth_kms(chain: Chain, auth_deployment: KmsDeployment) -> KmsRegistry:
    """The shared DstackKms, read and written directly (not through the proxy)."""
    return KmsRegistry.open(chain, auth_deployment.kms)


@dataclass
class Webhook:
    url: str
    http: httpx.Client
    proxy: FlakyProxy
    authorizer: Authorizer

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(self.url + path, json=body)

    def chain_requests(self) -> int:
        return len(self.proxy.records)


def service_log(caplog: pytest.LogCaptureFixture) -> str:
    """What warden and uvicorn logged (httpx's own request log is silenced by `warden auth serve`)."""
    return "\n".join(
        record.getMessage() for record in caplog.records if record.name.split(".")[0] in ("warden", "uvicorn")
    )


@pytest.fixture(scope="module")
def webhook(anvil: Anvil, chain: Chain, auth_kms: KmsRegistry) -> Iterator[Webhook]:
    """The webhook on 127.0.0.1, its chain behind a FlakyProxy (0.5 s per attempt, 2 attempts, 3 s deadline)."""
    with FlakyProxy(anvil.url, hang_seconds=3.0) as proxy:
        rpc = RpcClient(f"{proxy.url}/v2/{SECRET}?apikey={SECRET}", timeout=0.5, retries=1, backoff=0.01)
        registry = KmsRegistry(Chain(rpc, chain.chain_id), auth_kms.address)
        with (
            Authorizer(registry, timeout=3.0) as authorizer,
            serve(create_webhook_app(authorizer)) as url,
            httpx.Client(timeout=10.0) as http,
        ):
            yield Webhook(url, http, proxy, authorizer)
        rpc.close()
