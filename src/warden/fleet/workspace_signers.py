"""Each workspace's own signer, kept in the inventory database sealed under the control plane's secret key.

The database holds a workspace's signer address and its private key encrypted with AES-256-GCM under the
control plane's secret key (`WARDEN_SECRET_KEY`, or a 0600 file beside the database). The workspace's id
is the associated data, so a sealed key copied onto another workspace's row does not open: a leaked
database alone signs nothing, and one workspace's key never signs for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warden.chain.signer import Signer, signer_from_key
from warden.errors import BadInput, OperationFailed
from warden.files import require_private, write_secret_file
from warden.fleet.store import Fleet, WorkspaceRef
from warden.hexutil import parse_hex

SECRET_KEY_ENV = "WARDEN_SECRET_KEY"
SECRET_KEY_FILE = "secret.key"  # in the control plane's home, beside its SQLite database
_FORMAT = b"\x01"  # first byte of a sealed key: the layout below (version, 12-byte nonce, ciphertext + tag)
_NONCE_BYTES = 12


@dataclass(frozen=True)
class SecretKey:
    """The control plane's 32-byte key for sealing workspace signers; `source` says where it came from."""

    value: bytes = field(repr=False)
    source: str

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str] | None = None, *, create: bool = True) -> SecretKey:
        """`WARDEN_SECRET_KEY` (64 hex digits) when set, else the file at `path` (created 0600 when missing).

        Every control plane instance that shares a database must load the same key."""
        env = os.environ if env is None else env
        text = env.get(SECRET_KEY_ENV)
        if text:
            try:
                return cls(parse_hex(text, SECRET_KEY_ENV, 32), SECRET_KEY_ENV)
            except BadInput:
                raise BadInput(f"{SECRET_KEY_ENV} must be 32 bytes of hex (64 digits)") from None
        if not path.exists():
            if not create:
                raise OperationFailed(f"no secret key at {path} (set {SECRET_KEY_ENV} or run `warden serve` once)")
            path.parent.mkdir(parents=True, exist_ok=True)
            # another process creating it at the same moment wins: then its key is the one read below
            with suppress(FileExistsError):
                write_secret_file(path, secrets.token_hex(32) + "\n", replace=False)
        try:
            text = path.read_text()
        except OSError as exc:
            raise OperationFailed(f"cannot read the secret key {path}: {exc}") from None
        try:
            value = parse_hex(text, "secret key", 32)
        except BadInput:  # never echo a secret, not even a damaged one
            raise OperationFailed(f"the secret key {path} is not 32 bytes of hex") from None
        require_private(path, f"the secret key {path}")
        return cls(value, str(path))

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one other purpose (e.g. dashboard sessions), independent of the sealing key."""
        return hmac.new(self.value, b"warden\x00" + purpose.encode(), hashlib.sha256).digest()


def _associated_data(workspace_id: int) -> bytes:
    return b"warden workspace signer\x00" + str(workspace_id).encode()


def seal_signer(secret: SecretKey, workspace_id: int, signer: Signer) -> bytes:
    """The signer's key, encrypted for this workspace's row only."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(secret.value).encrypt(nonce, bytes(signer.account.key), _associated_data(workspace_id))
    return _FORMAT + nonce + sealed


def unseal_signer(secret: SecretKey, workspace_id: int, sealed: bytes, source: str) -> Signer:
    """The signer sealed by `seal_signer` for this workspace; OperationFailed when it does not open."""
    if sealed[:1] != _FORMAT or len(sealed) < 1 + _NONCE_BYTES + 16:
        raise OperationFailed(f"the stored signer of {source} is damaged: set it again")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        key = AESGCM(secret.value).decrypt(nonce, body, _associated_data(workspace_id))
    except InvalidTag:
        raise OperationFailed(
            f"the stored signer of {source} does not open with the secret key from {secret.source} "
            "(another key, or the row was copied from another workspace): set it again"
        ) from None
    return signer_from_key(key.hex(), source)


def assign_signer(fleet: Fleet, secret: SecretKey, workspace: WorkspaceRef, signer: Signer) -> None:
    """Make `signer` the one key the control plane signs `workspace`'s changes with."""
    fleet.set_signer(workspace, signer.address, seal_signer(secret, workspace.id, signer))
