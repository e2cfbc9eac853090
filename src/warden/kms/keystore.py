"""The KMS's root keys on disk: generated on first start, readable only by their owner (0600)."""

from __future__ import annotations

import os
from pathlib import Path

from warden.errors import OperationFailed
from warden.keys.app_keys import RootKeys

CA_FILE = "root-ca.key"
K256_FILE = "root-k256.key"


def write_secret(path: Path, data: bytes) -> None:
    """Create the file with mode 0600 before any byte is written, then move it into place."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def save_root_keys(directory: Path, keys: RootKeys) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    write_secret(directory / CA_FILE, keys.ca_secret)
    write_secret(directory / K256_FILE, keys.k256_secret)


def load_root_keys(directory: Path) -> RootKeys | None:
    """The stored keys, or None when this KMS has none yet; refuses files others can read."""
    ca, k256 = directory / CA_FILE, directory / K256_FILE
    if not ca.exists() and not k256.exists():
        return None
    for path in (ca, k256):
        if not path.exists():
            raise OperationFailed(f"{path} is missing while its sibling exists: the key directory is damaged")
        if path.stat().st_mode & 0o077:
            raise OperationFailed(f"{path} is readable by others: fix with `chmod 600 {path}`")
    secrets = ca.read_bytes(), k256.read_bytes()
    if any(len(s) != 32 for s in secrets):
        raise OperationFailed(f"root key files in {directory} are not 32-byte secrets")
    return RootKeys(ca_secret=secrets[0], k256_secret=secrets[1])


def load_or_generate_root_keys(directory: Path) -> tuple[RootKeys, bool]:
    """(keys, generated_now)."""
    existing = load_root_keys(directory)
    if existing is not None:
        return existing, False
    keys = RootKeys.generate()
    save_root_keys(directory, keys)
    return keys, True
