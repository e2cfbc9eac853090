"""`allow-devices add -i` / `remove -i` as an operator uses them: `warden` run on a pseudo-terminal against
anvil, driven with the keys a person would press, and the chain read afterwards."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from fcntl import ioctl
from pathlib import Path

import pytest

from tests.support.chain import deploy_app, send
from tests.support.cli import ok, warden
from tests.support.control_plane import PlaneWorld, add_node
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.inputs import hex0x
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil

A, B, C, D = (bytes([n]) * 32 for n in (0xA1, 0xB2, 0xC3, 0xD4))
FORMER = bytes([0x6F]) * 32  # what prod3 presented before a firmware update
OUTSIDER = bytes(31) + b"\x07"  # a device no inventory knows
DOWN, SPACE, ENTER, CTRL_C = "\x1b[B", " ", "\r", "\x03"
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>78])")
PATIENCE = 60.0  # seconds before a test gives up waiting for text that never comes (not a timing assertion)


class Terminal:
    """`warden ARGS` with a pseudo-terminal as stdin, stdout and stderr: read what it draws, type keys."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.fd, child = pty.openpty()
        ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # 40 rows, 200 columns
        self.process = subprocess.Popen(
            [sys.executable, "-m", "warden.cli.main", *args],
            stdin=child,
            stdout=child,
            stderr=child,
            env={**os.environ, "TERM": "xterm-256color", **env},
            start_new_session=True,  # its own terminal: Ctrl-C typed here reaches it alone
        )
        os.close(child)
        self.raw = ""

    @property
    def text(self) -> str:
        """Everything drawn so far, without escape sequences."""
        return ANSI.sub("", self.raw).replace("\r", "")

    def _read(self, until: float) -> bool:
        """Read what is there (waiting until `until` at most); False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the process exited and the terminal closed
            return False
        if b"\x1b[6n" in chunk:  # a cursor position request: answer as a terminal does
            os.write(self.fd, b"\x1b[1;1R")
        self.raw += chunk.decode(errors="replace")
        return bool(chunk)

    def expect(self, wanted: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while wanted not in self.text:
            assert time.monotonic() < deadline and self._read(deadline), f"never saw {wanted!r} in:\n{self.text}"

    def type(self, *keys: str) -> None:
        for key in keys:
            os.write(self.fd, key.encode())

    def exit_code(self) -> int:
        """Wait for the command to finish (reading everything it prints); its exit code."""
        deadline = time.monotonic() + PATIENCE
        while self._read(deadline):
            assert time.monotonic() < deadline, f"still running:\n{self.text}"
        return self.process.wait(timeout=PATIENCE)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """A fresh DstackApp owned by `owner`, with device A (prod1's) set by its initializer."""
    return deploy_app(chain, owner, kms, device_id=A)


@pytest.fixture
def nodes_file(tmp_path: Path) -> Path:
    path = tmp_path / "nodes.json"
    nodes = [
        {"name": "prod1", "device_id": hex0x(A), "region": "eu-west"},
        {"name": "prod2", "device_id": hex0x(B), "region": "us-east"},
        {"name": "prod3", "device_id": hex0x(C), "former_device_ids": [hex0x(FORMER)]},
        {"name": "edge", "device_id": hex0x(D), "region": "ap-south"},
        {"name": "prod9", "device_id": None},
    ]
    path.write_text(json.dumps(nodes))
    return path


def run(terminals: list[Terminal], anvil: Anvil, *args: str, **env: str) -> Terminal:
    terminal = Terminal(["allow-devices", *args], {"ETH_RPC_URL": anvil.url, "PRIVATE_KEY": DEV_PRIVATE_KEY, **env})
    terminals.append(terminal)
    return terminal


def allowed(anvil: Anvil, app: AppAuth) -> list[str]:
    data = ok(warden("allow-devices", "list", app.address, "--json", env={"ETH_RPC_URL": anvil.url}))
    return [d["device_id"] for d in data["devices"]]


def row(terminal: Terminal, node: str) -> str:
    return next(line for line in terminal.text.splitlines() if f" {node} " in line)


# -- add -i ------------------------------------------------------------------------------------------------


def test_add_shows_every_node_with_region_and_markers_and_adds_the_marked_ones(
    anvil: Anvil, app: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    term = run(terminals, anvil, "add", app.address, "-i", "--wait", "--nodes-file", str(nodes_file))
    term.expect("devices to add to")
    term.expect("prod9")
    assert "eu-west" in row(term, "prod1") and "allowed" in row(term, "prod1")  # shown, cannot be marked
    assert "us-east" in row(term, "prod2") and hex0x(B) in row(term, "prod2")
    assert "no id" in row(term, "prod9")
    # the pointer starts on prod2 (prod1 cannot be picked): mark prod2, skip prod3, mark edge
    term.type(SPACE, DOWN, DOWN, SPACE, ENTER)
    assert term.exit_code() == 0, term.text
    assert "added" in term.text
    assert allowed(anvil, app) == [hex0x(A), hex0x(B), hex0x(D)]


def test_keys_the_picker_does_not_know_are_ignored_and_it_stays(
    anvil: Anvil, app: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    term = run(terminals, anvil, "add", app.address, "-i", "--wait", "--nodes-file", str(nodes_file))
    term.expect("prod9")
    term.type("7", "x", "?", "\x1b[C")  # a number, letters, an arrow that goes nowhere
    term.type(SPACE, ENTER)
    assert term.exit_code() == 0, term.text
    assert allowed(anvil, app) == [hex0x(A), hex0x(B)]


def test_enter_with_nothing_marked_sends_nothing_and_says_so(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    nonce = chain.nonce(owner.address)
    term = run(terminals, anvil, "add", app.address, "-i", "--nodes-file", str(nodes_file))
    term.expect("prod9")
    term.type(ENTER)
    assert term.exit_code() == 0, term.text
    assert "nothing selected: nothing was sent" in term.text
    assert chain.nonce(owner.address) == nonce


def test_ctrl_c_in_the_picker_sends_nothing(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    nonce = chain.nonce(owner.address)
    term = run(terminals, anvil, "add", app.address, "-i", "--nodes-file", str(nodes_file))
    term.expect("prod9")
    term.type(SPACE, CTRL_C)
    assert term.exit_code() == 1, term.text
    assert "cancelled: nothing was sent" in term.text and "Traceback" not in term.text
    assert chain.nonce(owner.address) == nonce


def test_add_when_every_node_is_allowed_says_so_without_a_picker(
    anvil: Anvil, app: AppAuth, tmp_path: Path, terminals: list[Terminal]
) -> None:
    only_prod1 = tmp_path / "one.json"
    only_prod1.write_text(json.dumps([{"name": "prod1", "device_id": hex0x(A)}]))
    term = run(terminals, anvil, "add", app.address, "-i", "--nodes-file", str(only_prod1))
    assert term.exit_code() == 0, term.text
    assert "already allowed: nothing to add" in term.text


def test_add_without_an_inventory_says_how_to_give_one(
    anvil: Anvil, chain: Chain, owner: Signer, app: AppAuth, terminals: list[Terminal]
) -> None:
    nonce = chain.nonce(owner.address)
    term = run(terminals, anvil, "add", app.address, "-i")
    assert term.exit_code() == 2, term.text
    assert "error: add -i picks from the node inventory" in term.text and "--nodes-file" in term.text
    assert chain.nonce(owner.address) == nonce


# -- remove -i ---------------------------------------------------------------------------------------------


@pytest.fixture
def three_allowed(chain: Chain, owner: Signer, app: AppAuth) -> AppAuth:
    """A (prod1), FORMER (prod3's id before its firmware update) and OUTSIDER (no node) are allowed."""
    send(chain, owner, app.add_device(FORMER))
    send(chain, owner, app.add_device(OUTSIDER))
    return app


def test_remove_lists_allowed_devices_confirms_then_sends(
    anvil: Anvil, three_allowed: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    app = three_allowed
    term = run(terminals, anvil, "remove", app.address, "-i", "--wait", "--nodes-file", str(nodes_file))
    term.expect(hex0x(OUTSIDER))
    assert "former id of prod3" in row(term, "prod3") and hex0x(FORMER) in row(term, "prod3")
    assert "eu-west" in row(term, "prod1")
    assert "a marks all" not in term.text  # removal offers no "all"
    term.type("a")  # and the key does nothing
    term.type(DOWN, SPACE, DOWN, SPACE, ENTER)
    term.expect("remove these 2 device(s)")
    assert f"removeDevice {hex0x(FORMER)}" in term.text and f"removeDevice {hex0x(OUTSIDER)}" in term.text
    assert f"removeDevice {hex0x(A)}" not in term.text
    term.type("q", "1")  # not an answer: it asks on
    term.type("y")
    assert term.exit_code() == 0, term.text
    assert "removed" in term.text
    assert allowed(anvil, app) == [hex0x(A)]


def test_declining_or_ctrl_c_at_the_confirmation_sends_nothing(
    anvil: Anvil,
    chain: Chain,
    owner: Signer,
    three_allowed: AppAuth,
    nodes_file: Path,
    terminals: list[Terminal],
) -> None:
    nonce = chain.nonce(owner.address)
    for answer, said in (("n", "not confirmed: nothing was sent"), (CTRL_C, "cancelled: nothing was sent")):
        term = run(terminals, anvil, "rm", three_allowed.address, "-i", "--nodes-file", str(nodes_file))
        term.expect(hex0x(OUTSIDER))
        term.type(SPACE, ENTER)
        term.expect("remove these 1 device(s)")
        term.type(answer)
        assert term.exit_code() == 1, term.text
        assert said in term.text
    assert chain.nonce(owner.address) == nonce
    assert len(allowed(anvil, three_allowed)) == 3


def test_yes_skips_the_confirmation(
    anvil: Anvil, three_allowed: AppAuth, nodes_file: Path, terminals: list[Terminal]
) -> None:
    app = three_allowed
    term = run(terminals, anvil, "remove", app.address, "-i", "--yes", "--wait", "--nodes-file", str(nodes_file))
    term.expect(hex0x(OUTSIDER))
    term.type(SPACE, ENTER)
    assert term.exit_code() == 0, term.text
    assert "remove these" not in term.text
    assert allowed(anvil, app) == [hex0x(FORMER), hex0x(OUTSIDER)]


# -- markers from the control plane -------------------------------------------------------------------------


def test_nodes_running_the_apps_cvms_are_marked(
    anvil: Anvil, app: AppAuth, world: PlaneWorld, api: str, terminals: list[Terminal]
) -> None:
    for name, device in (("prod1", A), ("prod2", B), ("prod3", C)):
        add_node(world, name, device)
    world.fleet.register_app(world.workspace, app.address, chain_id=app.chain.chain_id, name="shared-key-demo")
    world.fleet.add_cvm(world.workspace, "shared-key-demo-1", app=app.address, node="prod1")
    world.fleet.add_cvm(world.workspace, "shared-key-demo-2", app=app.address, node="prod2")
    plane = {"WARDEN_API_URL": api, "WARDEN_API_TOKEN": world.token}
    term = run(terminals, anvil, "add", app.address, "-i", **plane)
    term.expect("prod3")
    assert "runs shared-key-demo-2 (refused at next boot)" in row(term, "prod2")
    assert "allowed, runs shared-key-demo-1" in row(term, "prod1")
    term.type(CTRL_C)
    assert term.exit_code() == 1

    term = run(terminals, anvil, "remove", app.address, "-i", **plane)
    term.expect("runs shared-key-demo-1")
    term.type(CTRL_C)
    assert term.exit_code() == 1
