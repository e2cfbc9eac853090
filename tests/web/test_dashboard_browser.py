"""The dashboard in a real browser (Playwright driving Debian's chromium; scripts/install.sh installs it).

The field report's drift: prod6's device id changes while a CVM of the app runs there. The app page must
warn, the operator fixes it with one click, and the allow-any switch must always say what the chain says.
Set WARDEN_SCREENSHOTS=1 to refresh docs/screenshots/app-page-{drift,fixed}.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, expect, sync_playwright

from tests.support.chain import send
from tests.support.control_plane import database_url, served
from tests.web.test_dashboard import Demo, build_demo
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LAPTOP: ViewportSize = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/install.sh (it installs Debian's chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def drifted(chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path) -> Iterator[Demo]:
    """The demo fleet with prod6 allowed, then its identity drifted (a BIOS update) under a running CVM."""
    with database_url("sqlite", tmp_path) as url:
        demo = build_demo(url, chain, owner, kms, tmp_path, signer=owner)
        send(chain, owner, demo.app.add_device(demo.devices["prod6"]))
        new = demo.device_for("prod6-after-bios-update")
        update = demo.world.fleet.record_identity("prod6", new[:16], new, allows=demo.world.plane.allows)
        assert update.flagged_cvms == ["shared-key-demo-2"]
        demo.devices["prod6-old"], demo.devices["prod6"] = demo.devices["prod6"], new
        try:
            yield demo
        finally:
            demo.world.plane.close()


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/")
    expect(page).to_have_url(base_url + "/login")
    page.get_by_label("Workspace API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("WARDEN_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_drift_is_flagged_and_fixed_in_one_click(browser: Browser, drifted: Demo, chain: Chain, owner: Signer) -> None:
    demo = drifted
    new = "0x" + demo.devices["prod6"].hex()
    context = browser.new_context(viewport=LAPTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    problems: list[str] = []  # script errors, CSP violations, failed loads
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    with served(demo.world) as base_url:
        sign_in(page, base_url, demo.world.token)
        page.get_by_role("link", name="shared-key-demo").click()
        expect(page.get_by_role("heading", name="shared-key-demo", level=1)).to_be_visible()
        assert page.evaluate("typeof window.htmx") == "object"  # served from the npm lock

        warning = page.locator("#allowlist-warning")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("1 running node is not on the allowlist: prod6")
        row = page.locator(f'li.device[data-device-id="{new}"]')
        expect(row).to_have_class("device st-deployed-not-allowed offending")
        expect(row.get_by_role("img", name="Running here, not allowed")).to_have_text("⚠")
        expect(row).to_contain_text("prod6")
        expect(row).to_contain_text("us-east")
        old_row = page.locator(f'li.device[data-device-id="0x{demo.devices["prod6-old"].hex()}"]')
        expect(old_row).to_contain_text("former identity")
        expect(old_row.get_by_role("img", name="Allowed")).to_have_text("✓")
        amber = row.evaluate("element => getComputedStyle(element).backgroundColor")
        assert amber != "rgba(0, 0, 0, 0)"  # the offending row is highlighted
        screenshot(page, "app-page-drift.png")
        # click to copy the device id
        row.locator("button.device-id").click()
        expect(row.locator("button.device-id")).to_have_class("copy mono device-id copied")
        assert page.evaluate("navigator.clipboard.readText()") == new

        row.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator(".flash-ok")).to_contain_text("Done: allow prod6")
        page.mouse.move(0, 0)  # no hover highlight in the screenshot
        expect(page.locator("#allowlist-warning")).to_have_count(0)
        expect(row).to_have_attribute("data-status", "allowed")
        expect(row.get_by_role("img", name="Allowed")).to_have_text("✓")
        assert demo.app.is_device_allowed(demo.devices["prod6"])
        assert "#" not in page.url  # htmx swapped the page in place (without it: a redirect to #device-allowlist)
        expect(page.locator('tr[data-cvm="shared-key-demo-2"]')).to_contain_text("✓ yes")
        screenshot(page, "app-page-fixed.png")

        # the allow-any switch: toggled in the UI, it changes the chain ...
        switch = page.get_by_role("switch", name="Allow any device")
        expect(switch).to_have_attribute("aria-checked", "false")
        switch.click()  # turning it on asks for confirmation (accepted above)
        expect(page.get_by_role("switch", name="Allow any device")).to_have_attribute("aria-checked", "true")
        assert demo.app.allow_any_device()
        # ... and changed on chain, the UI follows after a reload
        send(chain, owner, demo.app.set_allow_any_device(False))
        page.reload()
        expect(page.get_by_role("switch", name="Allow any device")).to_have_attribute("aria-checked", "false")
        expect(page.locator("#audit-trail")).to_contain_text("Allow any device off")
    context.close()
    assert problems == []


def test_actions_work_without_javascript(browser: Browser, drifted: Demo) -> None:
    demo = drifted
    context = browser.new_context(viewport=LAPTOP, java_script_enabled=False)
    page = context.new_page()
    dialogs: list[Dialog] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog))
    with served(demo.world) as base_url:
        sign_in(page, base_url, demo.world.token)
        page.goto(f"{base_url}/apps/{demo.app.address}")
        old = f'li.device[data-device-id="0x{demo.devices["prod6-old"].hex()}"]'
        page.locator(old).get_by_role("button", name="Remove", exact=True).click()  # a plain form POST, then a redirect
        expect(page).to_have_url(f"{base_url}/apps/{demo.app.address}#device-allowlist")
        expect(page.locator(".flash-ok")).to_contain_text("Done: disallow prod6's former device")
        expect(page.locator(old)).to_have_count(0)  # no longer allowed, and no node has that id any more
        assert not demo.app.is_device_allowed(demo.devices["prod6-old"])
        assert dialogs == []  # no script, no confirmation prompt
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    context.close()
