"""The KMS's root keys on disk: generated on first start, readable only by their owner (0600)."""

from __future__ import annotations

from pathlib import Path

from warden.errors import OperationFailed
from warden.files import private_dir, require_private, write_secret_file
from warden.keys.app_keys import RootKeys

CA_FILE = "root-ca.key"
K256_FILE = "root-k256.key"


def save_root_keys(directory: Path, keys: RootKeys) -> None:
    private_dir(directory)
    write_secret_file(directory / CA_FILE, keys.ca_secret)
    write_secret_file(directory / K256_FILE, keys.k256_secret)


def load_root_keys(directory: Path) -> RootKeys | None:
    """The stored keys, or None when this KMS has none yet; refuses files others can read."""
    ca, k256 = directory / CA_FILE, directory / K256_FILE
    if not ca.exists() and not k256.exists():
        return None
    for path in (ca, k256):
        if not path.exists():
            raise OperationFailed(f"{path} is missing while its sibling exists: the key directory is damaged")
        require_private(path)
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
