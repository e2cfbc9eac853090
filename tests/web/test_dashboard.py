"""The dashboard over real HTTP against anvil, on SQLite and on PostgreSQL.

The demo fleet: app shared-key-demo allows only prod5's device; its CVMs run on prod5 and prod6 (so
prod6 is "running, not allowed" and the warning banner shows); prod9 is deployable with nothing on it.
A second workspace, globex, has its own node and app that acme must never see.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from tests.support.chain import deploy_app, send
from tests.support.control_plane import DATABASES, PlaneWorld, database_url, make_plane, served
from tests.support.dashboard import csrf_of, hidden, sign_in
from tests.support.http_server import serve
from tests.support.safe import create_safe, deploy_safe_contracts, exec_batch
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.safe import batch_checksum
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.fleet.store import WorkspaceRef
from warden.web.app import create_control_plane_app
from warden.web.plane import ControlPlane
from warden.web.session import SESSION_COOKIE, new_session

NODES = ("prod5", "prod6", "prod9")


@dataclass
class Demo:
    world: PlaneWorld
    app: AppAuth
    devices: dict[str, bytes]  # node name -> its device id
    other: WorkspaceRef  # globex
    other_token: str
    other_app: AppAuth
    salt: str  # keeps this test's device ids apart from every other test's on the shared anvil

    @property
    def address(self) -> str:
        return self.app.address

    def device_for(self, name: str) -> bytes:
        return device_id_for(name, self.salt)


def device_id_for(name: str, salt: str) -> bytes:
    return hashlib.sha256(f"{name}:{salt}".encode()).digest()


def build_demo(
    url: str,
    chain: Chain,
    owner: Signer,
    kms: KmsRegistry,
    directory: Path,
    *,
    signer: Signer | None,
    app_owner: str | None = None,
) -> Demo:
    """The fleet described in the module docstring (a fresh app on the shared anvil, owned by `app_owner`);
    `signer` is acme's own signer (None: acme has none)."""
    world = make_plane(url, chain, directory / "cache", signer=signer)
    salt = str(directory)
    devices = {name: device_id_for(name, salt) for name in NODES}
    app = deploy_app(chain, owner, kms, owner=app_owner, device_id=devices["prod5"])
    fleet = world.fleet
    for name, region in zip(NODES, ("us-east", "us-east", "de-fra"), strict=True):
        fleet.add_node(name, region=region)
        fleet.grant(world.workspace, name)
        fleet.record_identity(name, devices[name][:16], devices[name], tcb_status="UpToDate")
    fleet.register_app(world.workspace, app.address, chain_id=chain.chain_id, name="shared-key-demo")
    fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod5", status="running")
    fleet.add_cvm(world.workspace, "shared-key-demo-2", app=app.address, node="prod6", status="running")

    other, other_token = fleet.create_workspace("globex")
    other_device = device_id_for("globex-1", salt)
    fleet.add_node("globex-1", region="eu-west")
    fleet.grant(other, "globex-1")
    fleet.record_identity("globex-1", other_device[:16], other_device)
    other_app = deploy_app(chain, owner, kms, device_id=other_device)
    fleet.register_app(other, other_app.address, chain_id=chain.chain_id, name="globex-secret-app")
    return Demo(world, app, devices, other, other_token, other_app, salt)


class MakeDemo(Protocol):
    def __call__(self, *, signer: Signer | None, app_owner: str | None = None) -> Demo: ...


@pytest.fixture(params=DATABASES)
def make_demo(
    request: pytest.FixtureRequest, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> Iterator[MakeDemo]:
    """Builds the demo on SQLite, then (the same test again) on PostgreSQL; the database is dropped after."""
    with database_url(request.param, tmp_path) as url:
        demos: list[Demo] = []

        def make(*, signer: Signer | None, app_owner: str | None = None) -> Demo:
            demos.append(build_demo(url, chain, owner, kms, tmp_path, signer=signer, app_owner=app_owner))
            return demos[-1]

        try:
            yield make
        finally:
            for demo in demos:
                demo.world.plane.close()


# -- helpers: a browser-like client -------------------------------------------------------------------------


@contextmanager
def dashboard(demo: Demo) -> Iterator[tuple[str, httpx.Client]]:
    with served(demo.world) as base_url, sign_in(base_url, demo.world.token) as client:
        yield base_url, client


def device_rows(html: str) -> dict[bytes, tuple[str, str]]:
    """The allowlist panel's rows: device id -> (status, css classes)."""
    rows = re.findall(r'<li class="device ([^"]*)" data-device-id="0x([0-9a-f]{64})" data-status="([a-z-]+)">', html)
    return {bytes.fromhex(device): (status, classes) for classes, device, status in rows}


def banner(html: str) -> str | None:
    match = re.search(r'id="allowlist-warning">(.*?)</div>', html, re.S)
    return re.sub(r"\s+", " ", match.group(1)) if match else None


def flash(html: str) -> str | None:
    match = re.search(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', html, re.S)
    if match is None:
        return None
    text = " ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split())
    return f"{match.group(1)}: {text}"


def switch_state(html: str) -> str:
    match = re.search(r'role="switch" aria-checked="(true|false)" aria-label="Allow any device"', html)
    assert match, "no Allow any device switch on the page"
    return match.group(1)


# -- sessions ----------------------------------------------------------------------------------------------


def test_every_page_needs_a_session(make_demo: MakeDemo, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    prod6 = "0x" + demo.devices["prod6"].hex()
    with served(demo.world) as base_url, httpx.Client(base_url=base_url, timeout=30) as anonymous:
        for path in ("/", "/apps", f"/apps/{demo.address}", f"/apps/{demo.address}/device-allowlist", "/nodes",
                     "/nodes/prod6", "/logout"):  # fmt: skip
            response = anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login"), path
        assert anonymous.get(f"/apps/{demo.address}").headers["location"] == f"/login?next=/apps/{demo.address}"
        # htmx cannot follow a redirect itself: it is told where to go
        refresh = anonymous.get(f"/apps/{demo.address}/device-allowlist", headers={"HX-Request": "true"})
        assert refresh.status_code == 401 and refresh.headers["hx-redirect"].startswith("/login")
        # a write without a session: sent to sign in, nothing changed on chain
        write = anonymous.post(f"/apps/{demo.address}/devices/add", data={"device_id": prod6, "csrf": "x"})
        assert write.status_code == 303 and write.headers["location"] == "/login"
        assert not demo.app.is_device_allowed(demo.devices["prod6"])
        assert "Sign in" in anonymous.get("/login").text


def test_a_wrong_token_gets_no_session(make_demo: MakeDemo) -> None:
    demo = make_demo(signer=None)
    wrong = "wdn_" + "x" * 40
    with served(demo.world) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        form = client.get("/login")
        response = client.post("/login", data={"token": wrong, "csrf": hidden(form.text, "csrf")})
        assert response.status_code == 401
        assert "not valid for any workspace" in response.text
        assert wrong not in response.text  # never echoed back
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        assert client.get("/").status_code == 303
        # the right token without the sign-in form's own CSRF value (a cross-site login) is refused too
        forged = httpx.post(base_url + "/login", data={"token": demo.world.token})
        assert forged.status_code == 403 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")


def test_sign_in_sets_a_hardened_cookie_and_never_shows_the_token(make_demo: MakeDemo, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    token, secret = demo.world.token, demo.world.plane.session_secret
    with served(demo.world) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        form = client.get("/login?next=/nodes")
        response = client.post("/login", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": "/nodes"})
        assert response.status_code == 303 and response.headers["location"] == "/nodes"
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        attributes = cookie.lower()
        assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
        max_age = int(re.search(r"max-age=(\d+)", attributes).group(1))  # type: ignore[union-attr]
        assert 7 * 3600 < max_age <= 8 * 3600
        assert token not in cookie and token[4:20] not in cookie
        pages = [client.get(p) for p in ("/", "/nodes", "/nodes/prod6", f"/apps/{demo.address}")]
        for page in pages:
            assert page.status_code == 200, page.url
            for value in (token, secret.hex(), DEV_PRIVATE_KEY[2:]):
                assert value not in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            assert page.headers["x-frame-options"] == "DENY"
        assert "shared-key-demo" in pages[0].text and "acme" in pages[0].text
        # "next" is a path on this site only
        form = client.get("/login?next=//evil.example/x")  # signed in already: goes home, not away
        assert form.status_code == 303 and form.headers["location"] == "/"


def test_a_tampered_or_expired_cookie_is_no_session(make_demo: MakeDemo) -> None:
    demo = make_demo(signer=None)
    secret = demo.world.plane.session_secret
    _, valid = new_session(secret, demo.world.workspace)
    _, expired = new_session(secret, demo.world.workspace, lifetime=60, now=1_000_000)
    _, foreign = new_session(b"another secret, another server!!", demo.world.workspace)
    _, vanished = new_session(secret, WorkspaceRef(999, "deleted"))
    body, tag = valid.split(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + tag
    with served(demo.world) as base_url:
        assert httpx.get(base_url + "/", cookies={SESSION_COOKIE: valid}).status_code == 200
        for value in (expired, foreign, vanished, tampered, "garbage", valid + "x"):
            assert httpx.get(base_url + "/", cookies={SESSION_COOKIE: value}).status_code == 303, value


def test_a_session_sees_only_its_workspace(make_demo: MakeDemo, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    other_device = "0x" + demo.device_for("prod6").hex()
    with dashboard(demo) as (base_url, client):
        for path in (f"/apps/{demo.other_app.address}", f"/apps/{demo.other_app.address}/device-allowlist",
                     "/nodes/globex-1", "/apps/globex-secret-app"):  # fmt: skip
            page = client.get(path)
            assert page.status_code == 404, path
            assert "Not found" in page.text and "<html" in page.text
        csrf = csrf_of(client)
        write = client.post(f"/apps/{demo.other_app.address}/devices/add", data={"device_id": other_device,
                                                                                 "csrf": csrf})  # fmt: skip
        assert write.status_code == 404
        assert not demo.other_app.is_device_allowed(bytes.fromhex(other_device[2:]))
        assert "globex" not in client.get("/").text and "globex-1" not in client.get("/nodes").text
        # and the other way round
        with sign_in(base_url, demo.other_token) as globex:
            assert "globex-secret-app" in globex.get("/").text
            assert globex.get(f"/apps/{demo.address}").status_code == 404
            assert globex.get("/nodes/prod6").status_code == 404
            assert "prod5" not in globex.get("/nodes").text


def test_writes_need_the_sessions_csrf_token(make_demo: MakeDemo, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    prod6 = "0x" + demo.devices["prod6"].hex()
    with dashboard(demo) as (base_url, client), sign_in(base_url, demo.world.token) as second:
        other_sessions_csrf = csrf_of(second)
        assert other_sessions_csrf != csrf_of(client)
        for csrf in (None, "", "forged", other_sessions_csrf):
            data = {"device_id": prod6} | ({"csrf": csrf} if csrf is not None else {})
            for path, fields in ((f"/apps/{demo.address}/devices/add", data),
                                 (f"/apps/{demo.address}/allow-any", {"enable": "true"} | data)):  # fmt: skip
                response = client.post(path, data=fields)
                assert response.status_code == 403, (path, csrf)
                assert "Nothing was changed" in response.text
        assert not demo.app.is_device_allowed(demo.devices["prod6"])
        assert not demo.app.allow_any_device()
        signed_out = client.post("/logout", data={})
        assert signed_out.status_code == 403
        assert client.get("/").status_code == 200  # still signed in


# -- the Device Allowlist panel ------------------------------------------------------------------------------


def test_banner_and_rows_show_the_running_node_that_is_not_allowed(
    make_demo: MakeDemo, chain: Chain, owner: Signer
) -> None:
    demo = make_demo(signer=owner)
    with dashboard(demo) as (_, client):
        page = client.get(f"/apps/{demo.address}")
        assert page.status_code == 200
        text = banner(page.text)
        assert text is not None and "prod6" in text and "shared-key-demo-2" in text and "prod5" not in text
        rows = device_rows(page.text)
        assert rows[demo.devices["prod5"]][0] == "allowed"
        assert rows[demo.devices["prod6"]] == ("deployed-not-allowed", "st-deployed-not-allowed offending")
        assert rows[demo.devices["prod9"]] == ("known-not-deployed", "st-known-not-deployed")
        assert switch_state(page.text) == "false"
        assert f'data-copy="0x{demo.devices["prod6"].hex()}"' in page.text  # click to copy, the full id
        assert '<span class="cc" aria-hidden="true">DE</span>de-fra' in page.text  # prod9's region
        assert re.search(r'data-cvm="shared-key-demo-2">.*?⚠ no', page.text, re.S)
        assert "Device added" in page.text  # the audit trail: the initializer's DeviceAdded
        apps = client.get("/").text
        assert "not allowed: prod6" in apps
        # the same panel alone, for htmx to refresh in place
        fragment = client.get(f"/apps/{demo.address}/device-allowlist", headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<section id="device-allowlist"') and "<html" not in fragment.text
        assert banner(fragment.text) == text

        send(chain, owner, demo.app.add_device(demo.devices["prod6"]))  # fixed elsewhere (the CLI, a Safe)
        fixed = client.get(f"/apps/{demo.address}").text
        assert banner(fixed) is None
        assert device_rows(fixed)[demo.devices["prod6"]] == ("allowed", "st-allowed")
        assert "✓ all running nodes allowed" in client.get("/").text


def test_the_workspace_signer_adds_the_device_and_the_banner_goes(
    make_demo: MakeDemo, chain: Chain, owner: Signer
) -> None:
    demo = make_demo(signer=owner)
    prod6 = demo.devices["prod6"]
    with dashboard(demo) as (_, client):
        response = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": "0x" + prod6.hex(),
                                                                          "csrf": csrf_of(client)})  # fmt: skip
        assert response.status_code == 303
        assert response.headers["location"] == f"/apps/{demo.address}#device-allowlist"
        assert demo.app.is_device_allowed(prod6)
        page = client.get(response.headers["location"]).text
        note = flash(page)
        assert note is not None and note.startswith("ok: Done: allow prod6")
        tx = re.search(r'class="copy mono tx-hash" data-copy="(0x[0-9a-f]{64})"', page)
        assert tx is not None
        receipt = chain.receipt(tx.group(1))
        assert receipt is not None and int(receipt["status"], 16) == 1
        assert banner(page) is None
        assert device_rows(page)[prod6] == ("allowed", "st-allowed")
        assert flash(client.get(f"/apps/{demo.address}").text) is None  # shown once
        # adding it again sends nothing
        again = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": prod6.hex(),
                                                                       "csrf": csrf_of(client)})  # fmt: skip
        assert flash(client.get(again.headers["location"]).text) == (
            f"info: prod6 (0x{prod6.hex()[:8]}…{prod6.hex()[-8:]}) is already on the allowlist; nothing was sent."
        )
        # remove, through htmx: the answer is the page itself, swapped in place
        removed = client.post(f"/apps/{demo.address}/devices/remove", headers={"HX-Request": "true"},
                              data={"device_id": "0x" + prod6.hex(), "csrf": csrf_of(client)})  # fmt: skip
        assert removed.status_code == 200 and 'id="page"' in removed.text
        assert flash(removed.text) is not None and flash(removed.text).startswith("ok: Done: disallow prod6")  # type: ignore[union-attr]
        assert not demo.app.is_device_allowed(prod6)
        assert banner(removed.text) is not None
        assert "Device removed" in removed.text


def test_a_bad_device_id_is_a_clear_400(make_demo: MakeDemo, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    with dashboard(demo) as (_, client):
        for bad in ("", "0x1234", "zz" * 32):
            response = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": bad,
                                                                              "csrf": csrf_of(client)})  # fmt: skip
            assert response.status_code == 400 and "device" in response.text
        allow = client.post(f"/apps/{demo.address}/allow-any", data={"enable": "maybe", "csrf": csrf_of(client)})
        assert allow.status_code == 400
        assert not demo.app.allow_any_device()


def test_a_workspace_signer_that_is_not_the_owner_sends_nothing(
    make_demo: MakeDemo, owner: Signer, stranger: Signer
) -> None:
    demo = make_demo(signer=stranger)
    stranger_nonce = demo.app.chain.nonce(stranger.address)
    with dashboard(demo) as (_, client):
        page = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": demo.devices["prod6"].hex(),
                                                                      "csrf": csrf_of(client)})  # fmt: skip
        # handed back for the owner to sign, never signed with a key that does not own the app
        assert page.status_code == 200 and "Nothing was sent" in page.text
        assert f"owned by the account {owner.address}" in page.text
        assert f"not by this workspace's signer {stranger.address}" in html.unescape(page.text)
        assert "addDevice 0x" in page.text
        assert not demo.app.is_device_allowed(demo.devices["prod6"])
        assert demo.app.chain.nonce(stranger.address) == stranger_nonce


def test_allow_any_switch_follows_the_chain(make_demo: MakeDemo, chain: Chain, owner: Signer) -> None:
    demo = make_demo(signer=owner)
    with dashboard(demo) as (_, client):
        on = client.post(f"/apps/{demo.address}/allow-any", data={"enable": "true", "csrf": csrf_of(client)})
        assert demo.app.allow_any_device()
        page = client.get(on.headers["location"]).text
        assert switch_state(page) == "true"
        assert flash(page).startswith("ok: Done: turn Allow any device on.")  # type: ignore[union-attr]
        assert banner(page) is None  # prod6 is not listed, but allowAnyDevice lets it boot
        assert "covered by Allow any device" in page
        # the same request again (a double submit) does not flip it back
        twice = client.post(f"/apps/{demo.address}/allow-any", data={"enable": "true", "csrf": csrf_of(client)})
        assert flash(client.get(twice.headers["location"]).text) == (
            "info: Allow any device is already on; nothing was sent."
        )
        assert demo.app.allow_any_device()
        send(chain, owner, demo.app.set_allow_any_device(False))  # changed on chain directly
        page = client.get(f"/apps/{demo.address}").text
        assert switch_state(page) == "false" and banner(page) is not None
        assert "Allow any device off" in page and "Allow any device on" in page  # both in the audit trail


# -- no signer: a Safe batch and calldata ----------------------------------------------------------------


def test_without_a_signer_the_change_is_a_safe_batch(make_demo: MakeDemo, chain: Chain, owner: Signer) -> None:
    demo = make_demo(signer=None)
    prod6 = demo.devices["prod6"]
    calldata = "0x" + demo.app.add_device(prod6).data.hex()
    with dashboard(demo) as (_, client):
        page = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": "0x" + prod6.hex(),
                                                                      "csrf": csrf_of(client)})  # fmt: skip
        assert page.status_code == 200
        assert "has no signer here" in page.text and "Nothing was sent" in page.text
        assert f'<code class="calldata">{calldata}</code>' in page.text
        assert f"addDevice 0x{prod6.hex()}" in page.text
        assert not demo.app.is_device_allowed(prod6)

        fields = {"change": hidden(page.text, "change"), "device_id": hidden(page.text, "device_id"),
                  "csrf": hidden(page.text, "csrf")}  # fmt: skip
        download = client.post(f"/apps/{demo.address}/safe-batch", data=fields)
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/json"
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "add-device.json" in disposition
        batch = download.json()
        assert batch["chainId"] == str(chain.chain_id)
        assert batch["meta"]["createdFromSafeAddress"] == owner.address
        assert batch["meta"]["checksum"] == batch_checksum(batch)
        assert batch["transactions"] == [
            {"to": demo.address, "value": "0", "data": calldata, "contractMethod": None, "contractInputsValues": None}
        ]
        assert not demo.app.is_device_allowed(prod6)
        # the batch download is a write-shaped request too: it needs the CSRF token
        assert client.post(f"/apps/{demo.address}/safe-batch", data=fields | {"csrf": "x"}).status_code == 403

        toggle = client.post(f"/apps/{demo.address}/allow-any", data={"enable": "true", "csrf": csrf_of(client)})
        expected = "0x" + demo.app.set_allow_any_device(True).data.hex()
        assert f'<code class="calldata">{expected}</code>' in toggle.text
        assert not demo.app.allow_any_device()


def test_a_safe_owned_app_gets_a_batch_that_the_safe_executes(
    make_demo: MakeDemo, chain: Chain, owner: Signer, third: Signer
) -> None:
    contracts = deploy_safe_contracts(chain, owner)
    safe = create_safe(chain, owner, contracts, [third.address], 1, salt=chain.block_number())
    # the workspace has a signer, but the app belongs to the Safe: the dashboard must not try to send
    demo = make_demo(signer=owner, app_owner=safe.address)
    with dashboard(demo) as (_, client):
        page = client.post(f"/apps/{demo.address}/devices/add", data={"device_id": demo.devices["prod6"].hex(),
                                                                      "csrf": csrf_of(client)})  # fmt: skip
        assert page.status_code == 200 and f"owned by the contract {safe.address}" in page.text
        fields = {k: hidden(page.text, k) for k in ("change", "device_id", "csrf")}
        batch = client.post(f"/apps/{demo.address}/safe-batch", data=fields).json()
        assert batch["meta"]["createdFromSafeAddress"] == safe.address
        exec_batch(safe, contracts, batch, [third], submitter=owner)
        fixed = client.get(f"/apps/{demo.address}").text
        assert banner(fixed) is None
        assert device_rows(fixed)[demo.devices["prod6"]][0] == "allowed"


@pytest.mark.parametrize("make_demo", ["sqlite"], indirect=True)  # about the chain, not the database
def test_an_unreachable_chain_is_said_plainly(make_demo: MakeDemo) -> None:
    demo = make_demo(signer=None)
    # the same inventory, served by a control plane whose only RPC URL does not answer
    offline = ControlPlane(demo.world.fleet, ["http://127.0.0.1:9"], session_secret=demo.world.plane.session_secret)
    with serve(create_control_plane_app(offline)) as base_url, sign_in(base_url, demo.world.token) as client:
        page = client.get(f"/apps/{demo.address}")
        assert page.status_code == 200
        assert "The allowlist could not be read from the chain." in page.text
        assert "shared-key-demo-2" in page.text  # the inventory still shows
        assert 'action="/apps/' not in page.text  # no action is offered on a state it cannot read
        assert "chain unreachable" in client.get("/").text


# -- nodes, sign out, static files ---------------------------------------------------------------------------


def test_nodes_pages_show_identity_history(make_demo: MakeDemo, chain: Chain, owner: Signer) -> None:
    demo = make_demo(signer=None)
    old, new = demo.devices["prod6"], demo.device_for("prod6-after-bios-update")
    send(chain, owner, demo.app.add_device(old))  # prod6 was allowed; then its BIOS update changed its id
    update = demo.world.fleet.record_identity("prod6", new[:16], new, allows=demo.world.plane.allows)
    assert update.flagged_cvms == ["shared-key-demo-2"]
    with dashboard(demo) as (_, client):
        nodes = client.get("/nodes").text
        for name in NODES:
            assert f'data-node="{name}"' in nodes
        row = re.search(r'data-node="prod6">(.*?)</tr>', nodes, re.S)
        assert row is not None
        assert f'data-copy="0x{new.hex()}"' in row.group(1) and f'data-copy="0x{new[:16].hex()}"' in row.group(1)
        assert "UpToDate" in row.group(1) and "online" in row.group(1) and "just now" in row.group(1)

        node = client.get("/nodes/prod6").text
        history = re.search(r'id="identity-history">(.*?)</table>', node, re.S)
        assert history is not None
        changes = re.findall(r'data-copy="0x([0-9a-f]+)"[^>]*>[^<]*</button>', history.group(1))
        assert changes == [old.hex(), new.hex(), old.hex()]  # newest first: old -> new, then the first sighting
        assert "shared-key-demo-2" in node

        app_page = client.get(f"/apps/{demo.address}").text
        assert device_rows(app_page)[old] == ("allowed", "st-allowed")
        assert re.search(rf'data-device-id="0x{old.hex()}".*?prod6</span><span class="tag">former identity', app_page,
                         re.S)  # fmt: skip
        assert device_rows(app_page)[new] == ("deployed-not-allowed", "st-deployed-not-allowed offending")


def test_sign_out_ends_the_session(make_demo: MakeDemo) -> None:
    demo = make_demo(signer=None)
    with dashboard(demo) as (_, client):
        assert client.get("/logout").status_code == 200
        response = client.post("/logout", data={"csrf": csrf_of(client)})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert client.get("/").status_code == 303
        assert "You are signed out." in client.get("/login").text


def test_htmx_is_served_from_the_package_or_left_out(
    make_demo: MakeDemo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = make_demo(signer=None)
    packaged = resources.files("warden.web").joinpath("static", "htmx.min.js").read_bytes()
    assert packaged.startswith(b"var htmx=function()")  # the minified htmx build itself, not a placeholder
    assert "htmx.org@2.0.11" in resources.files("warden.web").joinpath("static", "htmx.LICENSE.txt").read_text()
    with dashboard(demo) as (_, client):
        page = client.get(f"/apps/{demo.address}").text
        assert '<script src="/static/htmx.min.js" defer></script>' in page and "hx-get=" in page
        script = client.get("/static/htmx.min.js")
        assert script.status_code == 200 and script.content == packaged
        assert client.get("/static/dashboard.css").status_code == 200
    monkeypatch.setenv("WARDEN_HTMX_JS", str(tmp_path / "missing.js"))
    with dashboard(demo) as (_, client):
        response = client.get(f"/apps/{demo.address}")
        assert response.status_code == 200 and "htmx" not in response.text
        assert 'action="/apps/' in response.text  # the forms still work without it
        assert client.get("/static/htmx.min.js").status_code == 404
        assert json.loads(client.get("/health").text) == {"status": "ok"}


def test_an_unknown_page_is_the_dashboards_404_and_the_api_stays_json(make_demo: MakeDemo) -> None:
    demo = make_demo(signer=None)
    with dashboard(demo) as (_, client):
        page = client.get("/no-such-page")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "There is no such page." in page.text and "Apps" in page.text  # the styled page, with the nav
        api = client.get("/api/no-such-route")
        assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
