"""The one writer for secret files: 0600 whatever the umask, atomic, no temporary file left behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from warden.errors import OperationFailed
from warden.files import private_dir, require_private, write_file, write_secret_file


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_secret_is_0600_and_replaces_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_text("old")
    path.chmod(0o644)
    write_secret_file(path, b"\x01" * 32)
    assert path.read_bytes() == b"\x01" * 32 and mode(path) == 0o600
    write_secret_file(path, "text too\n")
    assert path.read_text() == "text too\n" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["root.key"]


def test_without_replace_the_first_writer_wins(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    write_secret_file(path, "first", replace=False)
    with pytest.raises(FileExistsError):
        write_secret_file(path, "second", replace=False)
    assert path.read_text() == "first" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "devnet.json"
    write_secret_file(path, "complete")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_secret_file(path, "half")
    assert path.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["devnet.json"]


@pytest.mark.usefixtures("permissive_umask")
def test_public_files_and_private_dirs(tmp_path: Path) -> None:
    directory = private_dir(tmp_path / "a" / "pki")
    assert mode(directory) == 0o700
    write_file(directory / "root-ca.pem", "-----BEGIN CERTIFICATE-----\n")
    assert mode(directory / "root-ca.pem") == 0o644


def test_require_private_refuses_a_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "root-k256.key"
    write_secret_file(path, b"k")
    require_private(path)
    path.chmod(0o640)
    with pytest.raises(OperationFailed, match=r"root-k256.key is readable by others: fix with `chmod 600 "):
        require_private(path)
