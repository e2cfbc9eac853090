"""Each devnet CVM's dstack guest API, as the devnet's services process serves it: on the CVM's own HTTP port
and unix socket, so an app written against the unmodified `dstack-sdk` runs against the devnet with only
`DSTACK_SIMULATOR_ENDPOINT` set (a URL or a socket path, each the root of dstack's `POST /<Method>` API).

An endpoint answers as its CVM does now. While the inventory says the CVM is `running`, it answers as the
guest its boot left: booted here against the devnet KMS, so its keys are those every boot of the CVM gets
(`warden devnet cvm sign` uses the same ones). It boots again when the CVM's manifest, node or guest
version changes. Quotes come from the node's hardware as it is now (a firmware update shows in the next
quote; the keys stay those of the last boot). Any other status (stopped, boot-failed, created) answers
every method with 503 naming it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp

from warden.devnet.cvms import cvm_guest
from warden.devnet.fleet import Paths, load_node, read_manifest
from warden.devnet.state import DevnetState, load_state
from warden.errors import OperationFailed, WardenError
from warden.files import private_dir
from warden.fleet.store import CvmView
from warden.tee.guest import Guest
from warden.tee.guest_api import create_guest_app

# what decides a boot's outcome: the manifest it measures, its node, the guest version and its fallback
BootKey = tuple[bytes, str, str, bool]


class LiveGuest:
    """The guest agent of the devnet CVM `name`, following the CVM through reboots and stops."""

    def __init__(self, paths: Paths, name: str, record: Callable[[str], CvmView]) -> None:
        self.paths, self.name, self.record = paths, name, record
        self._lock = threading.Lock()
        self._booted: tuple[BootKey, Guest] | None = None

    def __call__(self) -> Guest:
        cvm = self.record(self.name)
        if cvm.status != "running":
            why = f" ({cvm.status_reason})" if cvm.status_reason else ""
            raise OperationFailed(
                f"CVM {self.name} is {cvm.status}{why}: it answers again once `warden devnet cvm boot {self.name}` "
                "succeeds"
            )
        return self.booted()

    def booted(self) -> Guest:
        """The guest as its current manifest, node and version boot it (booting it first if any changed)."""
        state = load_state(self.paths.home)
        if state is None or self.name not in state.cvms:
            raise OperationFailed(f"CVM {self.name} is no longer part of the devnet in {self.paths.home}")
        cvm = state.cvms[self.name]
        key: BootKey = (read_manifest(self.paths, self.name), cvm.node, cvm.guest_version, cvm.fallback_to_v1)
        with self._lock:  # one boot at a time; concurrent requests wait for it
            if self._booted is None or self._booted[0] != key:
                guest = cvm_guest(self.paths, state, self.name)
                try:
                    guest.boot()
                except WardenError as exc:
                    guest.kms.close()
                    raise OperationFailed(f"CVM {self.name} has no keys: {exc}") from None
                if self._booted is not None:
                    self._booted[1].kms.close()
                self._booted = (key, guest)
            guest = self._booted[1]
            node = load_node(self.paths, cvm.node)
            if node != guest.cvm.node:  # new firmware: the next quote carries the node's new PPID
                guest.cvm.node = node
            return guest

    def warm(self) -> None:
        """Boot ahead of the first request (a failure is left for that request to report)."""
        with contextlib.suppress(WardenError):
            self.booted()

    def close(self) -> None:
        with self._lock:
            if self._booted is not None:
                self._booted[1].kms.close()
                self._booted = None


@dataclass
class GuestEndpoint:
    """One CVM's guest API: the app, and the sockets it listens on (its HTTP port, its unix socket if any)."""

    guest: LiveGuest
    app: ASGIApp
    listeners: list[socket.socket]
    socket_path: Path | None

    def close(self) -> None:
        self.guest.close()
        for listener in self.listeners:
            listener.close()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the last one out removes the directory
                self.socket_path.parent.rmdir()


def bind_guest_endpoints(paths: Paths, state: DevnetState, record: Callable[[str], CvmView]) -> list[GuestEndpoint]:
    """Bind every CVM's guest API where devnet.json says it is (`record` reads a CVM's inventory entry)."""
    endpoints: list[GuestEndpoint] = []
    for name, cvm in state.cvms.items():
        port = urlsplit(cvm.guest_url).port if cvm.guest_url else None
        if port is None:
            continue  # a devnet.json from before guest endpoints: the next `warden devnet up` assigns them
        guest = LiveGuest(paths, name, record)
        listeners = [tcp_listener(port)]
        socket_path = Path(cvm.guest_socket) if cvm.guest_socket else None
        if socket_path is not None:
            listeners.append(unix_listener(socket_path))
        endpoints.append(GuestEndpoint(guest, create_guest_app(guest), listeners, socket_path))
    return endpoints


def tcp_listener(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:port (IPPROTO_TCP said explicitly: asyncio then sets TCP_NODELAY)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def unix_listener(path: Path) -> socket.socket:
    """A unix socket at `path` only its owner may use (directory 0700, socket 0600); a stale one is replaced."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():  # e.g. a directory someone else made in /tmp first
        raise OperationFailed(f"{path.parent} belongs to another user: remove it, then run `warden devnet up`")
    private_dir(path.parent)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    return sock
