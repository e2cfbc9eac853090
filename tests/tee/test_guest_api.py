"""The devnet guest agent over real HTTP: each failure answers `{"error": …}` with the status `warden.errors`
gives it (400 malformed, 404 unknown method, 503 the CVM or its KMS could not do it), and dstack-sdk sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dstack_sdk import DstackClient

from tests.support.http_server import serve
from warden.kms.client import KmsClient
from warden.tee.cvm import SimCvm
from warden.tee.guest import Guest
from warden.tee.guest_api import create_guest_app
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki


@pytest.fixture
def guest_url(tmp_path: Path, dead_url: str) -> Iterator[str]:
    """A CVM that has not booted (no app keys): its KMS is never asked."""
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    node = SimNode.load_or_create(tmp_path / "node", "prod5", "devnet")
    cvm = SimCvm(node, pki, app_id=b"\x12" * 20, compose_hash=bytes(32), instance_id=b"\x11" * 20,
                 os_image_hash=b"\x22" * 32, key_provider=b'{"name":"kms","id":"devnet"}')  # fmt: skip
    with serve(create_guest_app(Guest(cvm, KmsClient(dead_url), gateway=False))) as url:
        yield url


@pytest.mark.parametrize(
    ("method", "body", "status", "error"),
    [
        ("Version", b"", 200, None),
        ("Nope", b"{}", 404, "unknown method Nope"),
        ("GetKey", b"[]", 400, "request body must be a JSON object"),
        ("GetKey", b"{", 400, "request body is "),
        ("GetKey", b'{"algorithm": "rsa"}', 400, "unsupported algorithm 'rsa'"),
        ("GetQuote", b'{"report_data": "zz"}', 400, "invalid report_data 'zz': not hex"),
        ("GetQuote", b'{"report_data": 12}', 400, "report_data must be hex text"),
        ("GetKey", b'{"path": "/demo"}', 503, "the CVM has no app keys: it has not booted"),
    ],
)
def test_each_failure_answers_its_status(guest_url: str, method: str, body: bytes, status: int,
                                         error: str | None) -> None:  # fmt: skip
    answer = httpx.post(f"{guest_url}/{method}", content=body)
    assert answer.status_code == status, answer.text
    if error is None:
        assert answer.json() == {"version": "0.5.7", "rev": "warden-devnet"}
    else:
        assert list(answer.json()) == ["error"] and answer.json()["error"].startswith(error), answer.text


def test_dstack_sdk_sees_the_status(guest_url: str) -> None:
    with pytest.raises(httpx.HTTPStatusError) as failed:
        DstackClient(guest_url).get_key("/demo", "ethereum")
    assert failed.value.response.status_code == 503
