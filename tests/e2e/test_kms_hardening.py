"""The KMS under hostile input, its key files, and the guest API over a unix socket."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from dstack_sdk import DstackClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.world import World
from warden.errors import OperationFailed
from warden.keys.app_keys import RootKeys
from warden.kms.keystore import load_or_generate_root_keys, load_root_keys
from warden.tee.guest_api import create_guest_app

METHODS = ["GetAppKey", "SignCert", "GetKmsKey", "GetAppEnvEncryptPubKey", "GetMeta", "GetKmsAttestation", "Nope"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "api_version": st.integers(-2, 3) | st.text(max_size=3),
            "attestation": st.dictionaries(st.sampled_from(["quote", "event_log", "vm_config"]), json_values),
            "requester_key": st.text(alphabet="0123456789abcdef", max_size=70),
            "app_id": st.text(alphabet="0123456789abcdefx", max_size=44),
            "csr": json_values,
            "signature": st.text(max_size=20),
            "nonce": st.text(alphabet="0123456789abcdef", max_size=10),
        },
    ).map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(METHODS), body=bodies)
def test_fuzzed_requests_never_crash_the_kms_and_never_release_keys(world: World, method: str, body: str) -> None:
    response = httpx.post(f"{world.kms_url}/prpc/KMS.{method}", content=body.encode("utf-8", "replace"), timeout=10)
    assert response.status_code in (200, 400, 403, 404, 413, 503), (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    if method in ("GetAppKey", "SignCert", "GetKmsKey"):
        assert response.status_code != 200


def test_oversized_request_is_refused(world: World) -> None:
    response = httpx.post(f"{world.kms_url}/prpc/KMS.GetAppKey", content=b"{" + b" " * (2 << 20) + b"}")
    assert response.status_code == 413


def test_root_key_files_readable_by_others_are_refused(tmp_path: Path) -> None:
    keys, generated = load_or_generate_root_keys(tmp_path / "kms")
    assert generated and load_root_keys(tmp_path / "kms") == keys
    assert load_or_generate_root_keys(tmp_path / "kms") == (keys, False)
    os.chmod(tmp_path / "kms" / "root-k256.key", 0o644)
    with pytest.raises(OperationFailed, match="readable by others"):
        load_root_keys(tmp_path / "kms")
    (tmp_path / "kms" / "root-k256.key").unlink()
    with pytest.raises(OperationFailed, match="missing"):
        load_root_keys(tmp_path / "kms")


def test_root_keys_differ_per_generation() -> None:
    assert RootKeys.generate() != RootKeys.generate()


def serve_unix(app: Any, path: Path) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, uds=str(path), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return server, thread


def test_dstack_sdk_client_works_over_a_unix_socket(world: World, tmp_path: Path) -> None:
    guest = world.guest(world.cvm("prod5"))
    guest.boot()
    socket_path = tmp_path / "dstack.sock"
    server, thread = serve_unix(create_guest_app(guest), socket_path)
    try:
        client = DstackClient(str(socket_path))
        key = client.get_key("/shared-demo", "ethereum")
        assert key.decode_key() == guest.get_key("/shared-demo", "ethereum").key
        info = client.info()
        assert info.app_id == guest.cvm.app_id.hex() and info.compose_hash == guest.cvm.compose_hash.hex()
        quote = client.get_quote(b"warden")
        assert quote.decode_quote()[:2] == b"\x04\x00"  # TDX quote v4
        assert json.loads(quote.event_log)[1]["event"] == "app-id"
        assert client.version().version == guest.version
    finally:
        server.should_exit = True
        thread.join(10)
