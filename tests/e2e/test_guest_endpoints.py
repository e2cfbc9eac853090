"""Each devnet CVM serves dstack's guest API: an app using the unmodified dstack-sdk, pointed at a CVM with
DSTACK_SIMULATOR_ENDPOINT (an http URL or a unix socket path), gets its keys, quotes and info from the devnet."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dcap_qvl
import httpx
import pytest
from dstack_sdk import DstackClient
from eth_account import Account

from tests.e2e.devnet_runbook import DEMO_CVMS, Devnet
from tests.support.cli import WARDEN_ENV
from warden.devnet.fleet import Paths, attestation_policy, load_node, load_pki
from warden.identity.device import device_id_from_ppid
from warden.identity.quote import verify_quote
from warden.tee.quote import pad_report_data

SHARED_KEY = ("/shared-demo", "ethereum")  # what `warden devnet cvm sign` signs with
TIMEOUT = 30.0  # the SDK's default of 3 s is tight on a loaded test machine; no test here measures time


@pytest.fixture(scope="module")
def cvms(devnet: Devnet) -> dict[str, dict[str, Any]]:
    """`warden devnet status --json`'s CVMs by name."""
    return {c["name"]: c for c in devnet.ok("devnet", "status")["cvms"]}


@pytest.fixture(params=["guest_url", "guest_socket"])
def endpoint_of(request: pytest.FixtureRequest, cvms: dict[str, dict[str, Any]]) -> Iterator[dict[str, str]]:
    """CVM name → the endpoint an app sets as DSTACK_SIMULATOR_ENDPOINT (its http URL, or its socket path)."""
    yield {name: cvm[request.param] for name, cvm in cvms.items()}


def sdk(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> DstackClient:
    """A client configured as an app in the CVM would be: by DSTACK_SIMULATOR_ENDPOINT alone."""
    monkeypatch.setenv("DSTACK_SIMULATOR_ENDPOINT", endpoint)
    return DstackClient(timeout=TIMEOUT)


def test_status_lists_each_cvms_guest_url_and_private_socket(devnet: Devnet, cvms: dict[str, dict[str, Any]]) -> None:
    assert set(cvms) == set(DEMO_CVMS)
    urls = {cvm["guest_url"] for cvm in cvms.values()}
    assert len(urls) == 3 and all(url.startswith("http://127.0.0.1:") for url in urls)
    for name, cvm in cvms.items():
        socket = Path(cvm["guest_socket"])
        # under the home (in a short directory of the home's own if the home's path is too long for a socket)
        assert socket == Paths(devnet.home).guest_socket(name) and socket.is_socket()
        assert socket.stat().st_mode & 0o777 == 0o600 and socket.parent.stat().st_mode & 0o777 == 0o700
    human = devnet.run("devnet", "status")
    assert human.exit_code == 0
    for cvm in cvms.values():
        assert f"guest API {cvm['guest_url']}  or  {cvm['guest_socket']}" in human.stdout


def test_every_cvm_of_the_app_gets_the_key_devnet_cvm_sign_uses(
    devnet: Devnet, endpoint_of: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = {name: sdk(endpoint, monkeypatch).get_key(*SHARED_KEY) for name, endpoint in endpoint_of.items()}
    assert len({key.key for key in keys.values()}) == 1, "the three CVMs of shared-key-demo share one key"
    assert len({tuple(key.signature_chain) for key in keys.values()}) == 1
    account = Account.from_key(keys["shared-key-demo-1"].decode_key())
    for name in DEMO_CVMS:
        assert devnet.ok("devnet", "cvm", "sign", name, "hello")["address"] == account.address
    # the signature chain leads to the devnet KMS's root key
    public_key = bytes(account._key_obj.public_key.to_compressed_bytes()).hex()
    chain = ",".join(keys["shared-key-demo-1"].signature_chain)
    verified = devnet.ok("keys", "verify", "--app-id", devnet.app, "--public-key", public_key, "--purpose", "ethereum",
                         "--signature-chain", chain)  # fmt: skip
    meta = httpx.post(devnet.status["kms_url"] + "/prpc/KMS.GetMeta", json={}, timeout=TIMEOUT).json()
    assert verified["kms_public_key"].removeprefix("0x") == meta["k256_pubkey"].removeprefix("0x")
    other = sdk(endpoint_of["shared-key-demo-2"], monkeypatch).get_key("/another-path", "ethereum")
    assert other.key != keys["shared-key-demo-2"].key


def test_quotes_verify_against_the_devnet_root_and_bind_the_report_data(
    devnet: Devnet, endpoint_of: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = attestation_policy(load_pki(Paths(devnet.home)))
    for name, endpoint in endpoint_of.items():
        client = sdk(endpoint, monkeypatch)
        report_data = f"nonce for {name}".encode()
        answer = client.get_quote(report_data)
        verified = policy.verify(answer.decode_quote())
        assert verified.quote.td is not None and verified.quote.td.report_data == pad_report_data(report_data)
        node = load_node(Paths(devnet.home), DEMO_CVMS[name][0])  # the simulated machine the CVM runs on
        assert device_id_from_ppid(verified.ppid) == node.device_id
        events = [e["event"] for e in json.loads(answer.event_log)]
        assert events[:3] == ["system-preparing", "app-id", "compose-hash"]
        info = client.info()
        assert "0x" + info.app_id == devnet.app.lower()
        assert "0x" + info.compose_hash == devnet.cvm_rows()[name]["compose_hash"]


async def fetch_collateral(pccs_url: str, quote: bytes) -> Any:
    """dcap-qvl's own PCCS client (it must be called inside a running event loop)."""
    return await dcap_qvl.get_collateral(pccs_url, quote)


def test_the_devnet_pccs_serves_the_collateral_of_guest_quotes(
    devnet: Devnet, cvms: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    status = devnet.ok("devnet", "status")
    pccs = status["pccs_url"]
    assert pccs.startswith("http://127.0.0.1:") and f"PCCS {pccs}" in devnet.run("devnet", "status").stdout
    quote = sdk(cvms["shared-key-demo-selfhost"]["guest_socket"], monkeypatch).get_quote(b"pccs").decode_quote()
    collateral = asyncio.run(fetch_collateral(pccs, quote))
    root = load_pki(Paths(devnet.home)).root_ca_der
    verified = verify_quote(quote, collateral, int(time.time()), root)
    assert verified.ppid == load_node(Paths(devnet.home), "hosted").ppid


def test_guest_endpoints_answer_malformed_requests_with_a_4xx_and_stay_up(cvms: dict[str, dict[str, Any]]) -> None:
    url = cvms["shared-key-demo-1"]["guest_url"]
    with httpx.Client(timeout=TIMEOUT) as http:
        for method, body, status in (
            ("GetKey", b"{", 400),
            ("GetKey", b"[1, 2]", 400),
            ("GetQuote", b'{"report_data": "' + b"ab" * 65 + b'"}', 400),
            ("GetQuote", b"{" + b" " * (2 << 20) + b"}", 413),
            ("Nope", b"{}", 404),
        ):
            answer = http.post(f"{url}/{method}", content=body)
            assert answer.status_code == status and "error" in answer.json(), (method, answer.text)
        assert http.post(f"{url}/Version", content=b"{}").status_code == 200


def test_a_stopped_cvm_hands_out_no_keys_until_it_boots_again(
    devnet: Devnet, cvms: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "shared-key-demo-2"
    before = sdk(cvms[name]["guest_url"], monkeypatch).get_key(*SHARED_KEY).key
    assert devnet.ok("devnet", "cvm", "stop", name) == {"cvm": name, "status": "stopped"}
    try:
        assert {c["name"]: c["status"] for c in devnet.ok("devnet", "status")["cvms"]}[name] == "stopped"
        for endpoint in (cvms[name]["guest_url"], cvms[name]["guest_socket"]):
            client = sdk(endpoint, monkeypatch)
            for method, args in (("get_key", SHARED_KEY), ("get_quote", (b"nonce",)), ("info", ())):
                with pytest.raises(httpx.HTTPStatusError) as refused:
                    getattr(client, method)(*args)
                assert refused.value.response.status_code == 503
                assert f"CVM {name} is stopped" in refused.value.response.json()["error"]
        # the other CVMs are untouched
        assert sdk(cvms["shared-key-demo-1"]["guest_url"], monkeypatch).get_key(*SHARED_KEY).key == before
    finally:
        assert devnet.ok("devnet", "cvm", "boot", name)["keys"] is True
    assert sdk(cvms[name]["guest_socket"], monkeypatch).get_key(*SHARED_KEY).key == before


def test_stopping_an_unknown_cvm_is_bad_input(devnet: Devnet) -> None:
    run = devnet.run("devnet", "cvm", "stop", "nope")
    assert run.exit_code == 2 and "unknown devnet CVM 'nope'" in run.stderr and "Traceback" not in run.stderr


def test_a_firmware_update_shows_in_the_next_quote_and_the_keys_go_with_the_next_boot(
    devnet: Devnet, cvms: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: it leaves prod6 off the allowlist."""
    name, node = "shared-key-demo-2", "prod6"
    client = sdk(cvms[name]["guest_url"], monkeypatch)
    key = client.get_key(*SHARED_KEY).key
    update = devnet.ok("devnet", "node", "update-firmware", node)
    assert update["changed"] and update["flagged_cvms"] == [name]
    verified = attestation_policy(load_pki(Paths(devnet.home))).verify(client.get_quote(b"after").decode_quote())
    assert "0x" + device_id_from_ppid(verified.ppid).hex() == update["device_id"]
    assert client.get_key(*SHARED_KEY).key == key  # still running: it keeps what its last boot released

    rebooted = devnet.run("devnet", "cvm", "reboot", name)
    assert rebooted.exit_code == 1 and "Device not allowed" in rebooted.stderr
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.get_key(*SHARED_KEY)
    assert refused.value.response.status_code == 503
    assert f"CVM {name} is boot-failed" in refused.value.response.json()["error"]
    assert "Device not allowed" in refused.value.response.json()["error"]


def test_warden_probe_in_a_devnet_cvm_records_its_node(devnet: Devnet, cvms: dict[str, dict[str, Any]]) -> None:
    """The probe program as its container runs it: the CVM's guest socket, the control plane from the env."""

    def probe(node: str, cvm: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in WARDEN_ENV and not k.startswith("DSTACK_")}
        env |= {"WARDEN_API_URL": devnet.env["WARDEN_API_URL"], "WARDEN_API_TOKEN": devnet.env["WARDEN_API_TOKEN"],
                "WARDEN_NODE": node, "DSTACK_SIMULATOR_ENDPOINT": cvms[cvm]["guest_socket"]}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "warden.probe", "run", "--json"], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    done = probe("prod5", "shared-key-demo-1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device_id"] == devnet.device_of("prod5")
    assert devnet.api("/api/nodes/prod5")["device_id"] == devnet.device_of("prod5")

    before = devnet.api("/api/nodes/hosted")["device_id"]
    wrong = probe("hosted", "shared-key-demo-1")  # prod5's CVM claiming to run on the node `hosted`
    assert wrong.returncode == 1 and "prod5" in wrong.stderr, wrong.stderr
    assert devnet.api("/api/nodes/hosted")["device_id"] == before  # nothing changed
