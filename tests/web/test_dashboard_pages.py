"""The dashboard's long tables are paged on the server: with more devices, CVMs and nodes than a page holds,
each page carries one page of rows and a link to the next, and following the links shows every row once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.chain import deploy_app, send
from tests.support.control_plane import PlaneWorld, add_node, plane_world, register, served
from tests.support.dashboard import sign_in
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.web.dashboard import NODES_PAGE, PAGE_ROWS

NODES = 130  # more than a page of devices (50), of CVMs (50) and of nodes (100)
ALLOWED = 4


@pytest.fixture
def world(tmp_path: Path, chain: Chain) -> Iterator[PlaneWorld]:
    with plane_world("sqlite", tmp_path, chain) as built:
        yield built


def device(i: int, salt: str) -> bytes:
    return hashlib.sha256(f"page node {i}:{salt}".encode()).digest()


@pytest.fixture
def salt(tmp_path: Path) -> str:
    return str(tmp_path)  # keeps this test's device ids apart from every other test's on the shared anvil


@pytest.fixture
def app(world: PlaneWorld, chain: Chain, owner: Signer, kms: KmsRegistry, salt: str) -> AppAuth:
    """Nodes 0..129 (node i presents device i); devices 0..3 allowed; a running CVM on every node."""
    deployed = deploy_app(chain, owner, kms, device_id=device(0, salt))
    for i in range(1, ALLOWED):
        send(chain, owner, deployed.add_device(device(i, salt)))
    register(world, deployed)
    for i in range(NODES):
        add_node(world, f"node-{i:03d}", device(i, salt))
        world.fleet.add_cvm(world.workspace, f"cvm-{i:03d}", app=deployed.address, node=f"node-{i:03d}",
                            status="running")  # fmt: skip
    return deployed


def test_the_app_page_holds_one_page_of_each_table_and_links_the_next(
    world: PlaneWorld, app: AppAuth, salt: str
) -> None:
    with served(world) as base_url, sign_in(base_url, world.token) as browser:
        page = browser.get(f"/apps/{app.address}").text
        devices = re.findall(r'data-device-id="(0x[0-9a-f]{64})"', page)
        cvms = re.findall(r'<tr data-cvm="([^"]+)"', page)
        assert len(devices) == PAGE_ROWS and len(cvms) == PAGE_ROWS
        assert f"{NODES} devices, {PAGE_ROWS} on this page" in page and f"{NODES} total" in page
        # the warning is about every running node the chain refuses, naming a few
        assert f"{NODES - ALLOWED} running nodes are not on the allowlist" in page
        assert f"and {NODES - ALLOWED - 10} more" in page

        seen_devices = _follow(browser, f"/apps/{app.address}", "devices=", r'data-device-id="(0x[0-9a-f]{64})"')
        assert sorted(seen_devices) == sorted({hex0x(device(i, salt)) for i in range(NODES)})
        assert len(seen_devices) == len(set(seen_devices)) == NODES
        seen_cvms = _follow(browser, f"/apps/{app.address}", "cvms=", r'<tr data-cvm="([^"]+)"')
        assert seen_cvms == [f"cvm-{i:03d}" for i in range(NODES)]

        nodes = _follow(browser, "/nodes", "after=", r'<tr data-node="([^"]+)"')
        assert nodes == [f"node-{i:03d}" for i in range(NODES)]
        assert len(re.findall(r'<tr data-node="', browser.get("/nodes").text)) == NODES_PAGE

        bad = browser.get(f"/apps/{app.address}", params={"devices": "not a cursor"})
        assert bad.status_code == 400 and "invalid cursor" in bad.text
        assert browser.get("/nodes", params={"after": "!!"}).status_code == 400


def _follow(browser: httpx.Client, url: str, param: str, rows: str) -> list[str]:
    """Every row over all pages of one table, following its next-page links; each page at most one page."""
    found: list[str] = []
    while True:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        items = re.findall(rows, page.text)
        assert len(items) <= max(PAGE_ROWS, NODES_PAGE)
        found += items
        links = [h.replace("&amp;", "&") for h in re.findall(r'<a href="([^"]+)" rel="next"', page.text)]
        following = [h for h in links if param in h.split("?")[-1].rsplit("&", 1)[-1]]
        if not following:
            return found
        url = following[0].split("#")[0]
