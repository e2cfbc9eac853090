"""Where a devnet CVM's guest API socket lives: under the devnet home, or, when that path is too long for a
unix socket, in a directory of that home's own under $XDG_RUNTIME_DIR (else the temporary directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.devnet.fleet import MAX_SOCKET_PATH, Paths


def test_each_cvm_has_its_socket_under_the_home(tmp_path: Path) -> None:
    assert Paths(tmp_path).guest_socket("shared-key-demo-1") == tmp_path / "sockets" / "shared-key-demo-1.sock"


def test_a_home_too_deep_for_a_unix_socket_gets_a_short_directory_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")  # only a path: nothing is created here
    deep = tmp_path / ("d" * MAX_SOCKET_PATH)
    socket = Paths(deep).guest_socket("shared-key-demo-1")
    assert socket is not None and socket.name == "shared-key-demo-1.sock"
    assert socket.parent.parent == Path("/run/user/1000") and socket.parent.name.startswith("warden-")
    assert Paths(deep / "other").guest_socket("shared-key-demo-1") not in (None, socket)  # one directory per home
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert Paths(deep).guest_socket("shared-key-demo-1") is None  # nowhere short enough: HTTP only
