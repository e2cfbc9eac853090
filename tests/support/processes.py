"""warden services as a user runs them, in a process of their own; and waiting for something to become true."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A 127.0.0.1 port nothing listened on a moment ago (bound once, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def wait_until(condition: Callable[[], T], seconds: float = 20.0, interval: float = 0.02, what: str = "condition") -> T:
    """Poll `condition` (something in the background makes it true) and return its first true value; fail the
    test (AssertionError naming `what`) if it never holds."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(interval)
    return found


def answers_health(url: str) -> bool:
    """Whether a service at `url` is up: GET /health answers 200."""
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a server's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class ServedProcess:
    """A `warden … serve` process: its banner and URL while it runs; its output and exit code once stopped."""

    banner: str
    url: str
    out: str = ""
    err: str = ""
    returncode: int | None = None


@contextmanager
def auth_serve(kms: str, rpc_url: str, *extra: str, timeout: float = 60) -> Iterator[ServedProcess]:
    """`warden auth serve --port 0 --kms KMS --rpc-url URL EXTRA…`, stopped with Ctrl-C (SIGINT) after the block.

    A watchdog kills it after `timeout` seconds, so a hung server never hangs the suite.
    """
    command = [sys.executable, "-m", "warden.cli.main", "auth", "serve", "--port", "0", "--kms", kms]
    process = subprocess.Popen(
        [*command, "--rpc-url", rpc_url, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        banner = process.stdout.readline() + process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        served = ServedProcess(banner, match.group(1))
        yield served
        process.send_signal(signal.SIGINT)
        served.out, served.err = process.communicate(timeout=15)
        served.returncode = process.returncode
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
