"""Hostile bodies against every HTTP service: a 4xx in the service's own error shape, and it keeps serving.

The attack of issue 13: an unauthenticated `POST /prpc/KMS.GetAppKey` whose body is 100,000 `[` then
100,000 `]` (200 KB) killed the devnet's services process (KMS, auth webhook and control plane in one)
without a log line. Each service here gets that body and its relatives, then a normal request.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from dstack_sdk import DstackClient

from tests.e2e.devnet_runbook import Devnet
from tests.e2e.world import COMPOSE_PLATFORM_A, World
from tests.support.dashboard import csrf_of, sign_in
from tests.support.http_server import serve
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.tee.guest_api import create_guest_app

DEEP = 100_000
HOSTILE = {
    "deep array": b"[" * DEEP + b"]" * DEEP,
    "deep object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep, unclosed": b"[" * DEEP,
    "deep inside an array of strings": b'["]]]",' + b"[" * DEEP + b"]" * DEEP + b"]",
    "huge number": b'{"n": ' + b"9" * DEEP + b"}",
    "not UTF-8": b'{"a": "\xff\xfe"}',
    # json.loads also reads UTF-16: byte by byte, the escaped quote would hide every bracket after it
    "deep, UTF-16": ('["\\"",' + "[" * DEEP + "]" * DEEP + "]").encode("utf-16-le"),
}
NO_STORE = {"x-content-type-options": "nosniff", "cache-control": "no-store"}
NOT_FRAMED = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}

REFUSED_BOOT = {"isAllowed": False, "reason": "invalid authorization request", "gatewayAppId": ""}


def has_headers(response: httpx.Response, expected: dict[str, str]) -> bool:
    return all(response.headers.get(name) == value for name, value in expected.items())


def post(client: httpx.Client, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": content_type})


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def test_the_devnet_services_answer_hostile_bodies_with_a_4xx_and_stay_up(devnet: Devnet, http: httpx.Client) -> None:
    kms, webhook = devnet.status["kms_url"], devnet.status["auth_webhook_url"]
    api_url, token = devnet.env["WARDEN_API_URL"], devnet.env["WARDEN_API_TOKEN"]
    authorized = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # first a change signed by the control plane: that imports eth_account (and py_ecc) in the services process,
    # which is what raised its recursion limit and let the decoder overflow the C stack
    prod9 = devnet.device_of("prod9")
    with sign_in(devnet.status["dashboard_url"], token) as browser:
        browser.post(f"/apps/{devnet.app}/devices/add", data={"device_id": prod9, "csrf": csrf_of(browser)})
    assert prod9 in devnet.allowed_devices()
    for name, body in HOSTILE.items():
        answer = post(http, f"{kms}/prpc/KMS.GetAppKey", body)
        assert answer.status_code == 400 and "error" in answer.json(), (name, answer.text)
        assert has_headers(answer, NO_STORE), (name, answer.headers)
        # the webhook takes 64 KiB at most (413 above), so it also gets the same shape cut to fit (400)
        for sized in (body, body.replace(b"[" * DEEP, b"[" * 30_000).replace(b"]" * DEEP, b"]" * 30_000)):
            answer = post(http, f"{webhook}/bootAuth/app", sized[: 64 * 1024])
            assert answer.status_code in (400, 413) and answer.json() == REFUSED_BOOT, (name, answer.text)
        deep_enough = b"[" * 30_000 + b"]" * 30_000
        assert post(http, f"{webhook}/bootAuth/app", deep_enough).status_code == 400
        for headers in ({"Content-Type": "application/json"}, authorized):  # with and without a token
            answer = http.post(f"{api_url}/api/nodes", content=body, headers=headers)
            assert answer.status_code in (400, 401, 422), (name, answer.status_code, answer.text)
            assert answer.headers["x-content-type-options"] == "nosniff", name
    # the KMS also parses JSON inside its body (the event log): bounded there too
    inner = {"quote": "00", "event_log": "[" * DEEP + "]" * DEEP, "vm_config": '{"a":' * DEEP + "1" + "}" * DEEP}
    answer = http.post(f"{kms}/prpc/KMS.GetAppKey", json=inner)
    assert 400 <= answer.status_code < 500, answer.text
    # over the body limit: 413, refused before it is all read
    assert post(http, f"{webhook}/bootAuth/app", b"[" * (65 * 1024)).status_code == 413
    assert post(http, f"{kms}/prpc/KMS.GetAppKey", b" " * (1 << 20) + b"{}").status_code == 413
    # the KMS's pRPC routes read a GET's body too: bounded as well
    assert http.request("GET", f"{kms}/prpc/KMS.GetMeta", content=b" " * (2 << 20)).status_code == 413
    assert http.post(f"{api_url}/api/nodes", content=b"x" * (2 << 20), headers=authorized).status_code == 413

    # the dashboard's forms: a deep JSON body and an oversized form, then a real change still works
    with sign_in(devnet.status["dashboard_url"], token) as browser:
        csrf = csrf_of(browser)
        path = f"/apps/{devnet.app}/devices/add"
        assert post(browser, path, HOSTILE["deep array"]).status_code == 400
        form = b"csrf=" + csrf.encode() + b"&device_id=" + b"a" * (2 << 20)
        assert post(browser, path, form, "application/x-www-form-urlencoded").status_code == 413
        many_fields = b"&".join([b"device_id=1"] * 80_000)  # under 1 MiB; Starlette parses 1,000 fields at most
        assert post(browser, path, many_fields, "application/x-www-form-urlencoded").status_code == 400
        assert browser.get("/nodes").status_code == 200

    # every service still answers, and answers right
    assert http.get(f"{kms}/health").text == "OK"
    assert http.post(f"{kms}/prpc/KMS.GetMeta", json={}).json()["k256_pubkey"]
    assert http.get(f"{webhook}/").json()["status"] == "ok"
    nodes = http.get(f"{api_url}/api/nodes", headers=authorized)
    assert nodes.status_code == 200 and {n["name"] for n in nodes.json()["nodes"]} >= {"prod5", "prod6"}
    assert nodes.headers["cache-control"] == "no-store" and nodes.headers["x-content-type-options"] == "nosniff"
    # JSON answers are neither sniffed nor cached; nothing of the control plane may be framed
    for answer in (http.get(f"{kms}/health"), http.post(f"{kms}/prpc/KMS.GetMeta", json={}), http.get(f"{webhook}/")):
        assert has_headers(answer, NO_STORE), (answer.url, answer.headers)
    assert has_headers(http.get(f"{api_url}/api/nodes"), NO_STORE)  # the 401 as well
    for page in ("/login", "/static/dashboard.css", "/no-such-page"):
        answer = http.get(devnet.status["dashboard_url"] + page)
        assert has_headers(answer, NOT_FRAMED), (page, answer.headers)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], page
    booted = devnet.run("devnet", "cvm", "reboot", "shared-key-demo-1")
    assert booted.exit_code == 0, booted.stderr
    assert devnet.ok("allow-devices", "remove", devnet.app, prod9, "--wait")["results"][0]["status"] == "removed"


def test_the_guest_agent_answers_hostile_bodies_with_a_4xx_and_stays_up(world: World, http: httpx.Client) -> None:
    guest = world.guest(world.cvm("prod5", compose_hash=COMPOSE_PLATFORM_A, instance=7))
    guest.boot()
    with serve(create_guest_app(guest)) as url:
        for name, body in HOSTILE.items():
            answer = post(http, f"{url}/GetKey", body)
            assert answer.status_code == 400 and "error" in answer.json(), (name, answer.text)
        assert post(http, f"{url}/GetKey", b"{}" + b" " * (1 << 20)).status_code == 413
        key = DstackClient(url).get_key("/after-the-attack", "ethereum")
        assert len(key.decode_key()) == 32


def test_signing_code_does_not_leave_the_recursion_limit_raised() -> None:
    # eth_account pulls in py_ecc, which raises the limit to 100,000 on import; warden puts it back.
    # A fresh interpreter: this test process imported eth_account long ago.
    script = (
        "import sys\n"
        "import warden.cli.main, warden.devnet.services  # what the CLI and the devnet services process import\n"
        "from warden.chain.signer import signer_from_key\n"
        f"signer_from_key({DEV_PRIVATE_KEY!r}, 'test')\n"
        "assert 'py_ecc' in sys.modules\n"
        "print(sys.getrecursionlimit())\n"
    )
    limit = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert int(limit.stdout) <= 1000
