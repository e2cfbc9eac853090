"""Workspaces on one control plane cannot touch each other's apps: the attack of issue 13, replayed on a devnet.

A second workspace (made with `warden workspace create`) registers the devnet workspace's app through the
API, signs in to the dashboard with its own token and presses Add on that app's Device Allowlist. Before,
the control plane's one operator key sent `addDevice` for it. Now nothing is sent: the second workspace has
no signer, and once it has one, that key does not own the app.
"""

from __future__ import annotations

import html
from pathlib import Path

import httpx

from tests.e2e.devnet_runbook import Devnet
from tests.support.chain import STRANGER_KEY
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.dashboard import csrf_of, sign_in
from warden.chain.signer import write_keystore

ATTACKER_DEVICE = "0x" + "a7" * 32


def api(devnet: Devnet, token: str) -> httpx.Client:
    return httpx.Client(base_url=devnet.env["WARDEN_API_URL"], headers={"Authorization": f"Bearer {token}"}, timeout=30)


def nonce(devnet: Devnet, address: str) -> int:
    return int(devnet.rpc("eth_getTransactionCount", address, "latest"), 16)


def press_add(devnet: Devnet, token: str, device: str) -> str:
    """Sign in to the dashboard with `token` and press Add for `device` on the demo app; the page answered."""
    with sign_in(devnet.status["dashboard_url"], token) as browser:
        answer = browser.post(f"/apps/{devnet.app}/devices/add", data={"device_id": device, "csrf": csrf_of(browser)})
        assert answer.status_code in (200, 303), answer.text
        return html.unescape(answer.text)


def test_a_second_workspace_cannot_make_the_control_plane_sign_for_another_workspaces_app(
    devnet: Devnet, tmp_path: Path
) -> None:
    owner = devnet.status["owner"]
    created = ok(devnet.run("workspace", "create", "mallory", "--json"))
    assert created["workspace"] == "mallory" and created["token"].startswith("wdn_")
    token = created["token"]

    # registering someone else's app and reading its public allowlist stay allowed
    with api(devnet, token) as client:
        registered = client.post("/api/apps", json={"app": devnet.app, "chain_id": devnet.status["chain_id"]})
        assert registered.status_code == 201, registered.text
        view = client.get(f"/api/apps/{devnet.app}/device-allowlist")
        assert view.status_code == 200 and view.json()["owner"] == owner
    sent_before = nonce(devnet, owner)

    # no signer: the change is handed back for the owner, nothing is signed
    page = press_add(devnet, token, ATTACKER_DEVICE)
    assert "The workspace mallory has no signer here" in page and "Nothing was sent" in page
    assert ATTACKER_DEVICE not in devnet.allowed_devices()
    assert nonce(devnet, owner) == sent_before

    # its own (funded) signer: still not the app's owner, so still nothing is signed
    keystore = tmp_path / "mallory.json"
    mallory = write_keystore(keystore, STRANGER_KEY, "mallory-password")
    env = devnet.env | {"WARDEN_KEYSTORE_PASSWORD": "mallory-password"}
    assert ok(warden("workspace", "set-signer", "mallory", "--keystore", str(keystore), "--json", env=env)) == {
        "workspace": "mallory",
        "signer": mallory,
    }
    mallory_sent = nonce(devnet, mallory)
    page = press_add(devnet, token, ATTACKER_DEVICE)
    assert f"not by this workspace's signer {mallory}" in page and "Nothing was sent" in page
    assert ATTACKER_DEVICE not in devnet.allowed_devices()
    assert (nonce(devnet, owner), nonce(devnet, mallory)) == (sent_before, mallory_sent)

    # the devnet's own workspace signs with the devnet key, which owns the app: the tour is unchanged
    listed = {w["workspace"]: w for w in ok(devnet.run("workspace", "ls", "--json"))["workspaces"]}
    assert listed["devnet"]["signer"] == owner and listed["mallory"]["signer"] == mallory
    prod9 = devnet.device_of("prod9")
    press_add(devnet, devnet.env["WARDEN_API_TOKEN"], prod9)
    assert prod9 in devnet.allowed_devices()
    assert nonce(devnet, owner) == sent_before + 1
    assert devnet.ok("allow-devices", "remove", devnet.app, prod9, "--wait")["results"][0]["status"] == "removed"


def test_rotating_a_token_ends_the_old_token_and_its_dashboard_sessions(devnet: Devnet) -> None:
    first = ok(devnet.run("workspace", "create", "rotating", "--json"))["token"]
    with sign_in(devnet.status["dashboard_url"], first) as browser:
        assert browser.get("/nodes").status_code == 200
        second = ok(devnet.run("workspace", "rotate-token", "rotating", "--json"))["token"]
        assert second != first
        assert browser.get("/nodes").status_code in (302, 303, 307)  # the old session went with the old token
    with api(devnet, first) as old, api(devnet, second) as new:
        assert old.get("/api/workspace").status_code == 401
        assert new.get("/api/workspace").json() == {"workspace": "rotating"}


def test_workspace_commands_refuse_bad_input_and_change_nothing(devnet: Devnet, tmp_path: Path) -> None:
    before = ok(devnet.run("workspace", "ls", "--json"))
    assert_clean_error(devnet.run("workspace", "create", "devnet"), 2, "exists already")
    assert_clean_error(devnet.run("workspace", "rotate-token", "nobody"), 2, "no workspace 'nobody'")
    missing = tmp_path / "missing.json"
    assert_clean_error(devnet.run("workspace", "set-signer", "devnet", "--keystore", str(missing)), 2, str(missing))
    not_a_keystore = tmp_path / "notes.json"
    not_a_keystore.write_text('{"hello": "world"}')
    assert_clean_error(devnet.run("workspace", "set-signer", "devnet", "--keystore", str(not_a_keystore)), 2,
                       "not a keystore")  # fmt: skip
    assert_clean_error(devnet.run("workspace", "set-signer", "devnet"), 2, "--keystore FILE or --clear")
    assert ok(devnet.run("workspace", "ls", "--json")) == before
