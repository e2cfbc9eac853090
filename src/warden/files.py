"""Files warden writes: secrets only their owner may read, and state a crash must never leave half written.

Every writer goes through a temporary file in the target's directory that is created with its final mode,
written, fsynced and then moved into place, so a reader sees the old file or the whole new one, and a secret
is never readable by anyone else, not even for the moment between create and chmod.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

from warden.errors import OperationFailed

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def write_secret_file(path: Path, data: bytes | str, *, replace: bool = True) -> None:
    """Write `data` to `path` atomically, readable and writable by its owner only (0600).

    With `replace=False` an existing file is left alone and FileExistsError raised: when two processes
    create the same key at once, one wins and the other reads the winner's complete file.
    """
    _write_atomic(path, data, SECRET_MODE, replace=replace)


def write_file(path: Path, data: bytes | str) -> None:
    """Write a file that holds no secret (0644) atomically: a crash never leaves half a certificate."""
    _write_atomic(path, data, PUBLIC_MODE, replace=True)


def private_dir(directory: Path) -> Path:
    """Create `directory` (and its parents) if needed and restrict it to its owner (0700)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, PRIVATE_DIR_MODE)
    return directory


def require_private(path: Path, what: str | None = None) -> None:
    """OperationFailed when group or others may read or write the secret file at `path`."""
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise OperationFailed(f"{what or path} is readable by others: fix with `chmod 600 {path}`")


def _write_atomic(path: Path, data: bytes | str, mode: int, *, replace: bool) -> None:
    content = data.encode() if isinstance(data, str) else data
    # mkstemp creates the file 0600 in the target's directory (same filesystem, so the move is atomic)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # pin the exact mode, whatever the umask
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # unlike a rename, a link never overwrites: FileExistsError instead
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)  # gone after a replace; the extra name after a link or a failure
