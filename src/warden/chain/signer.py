"""Who signs: a private key (flag or PRIVATE_KEY) or an encrypted keystore (WARDEN_KEYSTORE).

The key itself never leaves this module in readable form: it is not logged, not printed, and not part
of any repr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden.chain.inputs import parse_hex
from warden.errors import BadInput
from warden.files import write_secret_file
from warden.jsonbody import cap_recursion_limit

if TYPE_CHECKING:
    from eth_account import Account as AccountClass
    from eth_account.signers.local import LocalAccount

# eth_account (with py_ecc and scrypt) takes ~0.4 s to import: only commands that sign pay for it


def eth_account_class() -> type[AccountClass]:
    """eth_account's `Account`, imported on first use. Importing it pulls in py_ecc, which raises the
    interpreter's recursion limit to 100,000; it is put back at once (see warden.jsonbody)."""
    from eth_account import Account

    cap_recursion_limit()
    return Account


@dataclass(frozen=True)
class Signer:
    """A local account; `source` says where the key came from (flag, env, keystore)."""

    account: LocalAccount = field(repr=False)
    source: str

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign_transaction(self, tx: Mapping[str, Any]) -> bytes:
        return bytes(self.account.sign_transaction(dict(tx)).raw_transaction)

    def __repr__(self) -> str:
        return f"Signer({self.address}, from {self.source})"


def signer_from_key(key: str, source: str) -> Signer:
    try:
        secret = parse_hex(key, "private key", 32)
    except BadInput:
        # never echo the value back: it may be a real key with a typo
        raise BadInput(f"invalid private key from {source}: expected 32 bytes of hex") from None
    Account = eth_account_class()

    try:
        account = Account.from_key(secret)
    except Exception:
        raise BadInput(f"invalid private key from {source}: not a valid secp256k1 secret") from None
    return Signer(account, source)


def read_keystore(path: Path) -> dict[str, Any]:
    """The keystore's JSON, checked to be a version-3 keystore (so a bad path is refused before a prompt)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"keystore {path} does not exist") from None
    except IsADirectoryError:
        raise BadInput(f"keystore {path} is a directory, not a keystore file") from None
    except PermissionError:
        raise BadInput(f"keystore {path} is not readable (permission denied)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"keystore {path} is not readable: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError):
        raise BadInput(f"keystore {path} is not a keystore: not JSON") from None
    crypto = data.get("crypto", data.get("Crypto")) if isinstance(data, dict) else None
    if not isinstance(crypto, dict) or data.get("version") != 3:
        raise BadInput(f"keystore {path} is not a keystore: expected a version 3 JSON keystore with a crypto section")
    keystore: dict[str, Any] = data
    return keystore


def signer_from_keystore(path: Path, password: str, data: dict[str, Any] | None = None) -> Signer:
    Account = eth_account_class()

    if data is None:
        data = read_keystore(path)
    try:
        secret = Account.decrypt(data, password)
    except ValueError:
        raise BadInput(f"keystore {path}: wrong password (MAC mismatch)") from None
    except Exception as exc:
        raise BadInput(f"keystore {path} is not a valid keystore: {type(exc).__name__}") from None
    return Signer(Account.from_key(secret), f"keystore {path}")


def write_keystore(path: Path, key: str, password: str) -> str:
    """Encrypt a key into a keystore file readable only by its owner (0600); returns the address."""
    Account = eth_account_class()

    account = signer_from_key(key, "argument").account
    data = Account.encrypt(account.key, password)
    write_secret_file(path, json.dumps(data))
    return str(account.address)


def load_signer(
    *,
    private_key: str | None = None,
    keystore: str | None = None,
    env: Mapping[str, str] | None = None,
    ask_password: Callable[[str], str] | None = None,
) -> Signer:
    """Flags first, then the environment; raises BadInput with what to set when nothing is given."""
    env = os.environ if env is None else env
    if private_key:
        return signer_from_key(private_key, "--private-key")
    keystore = keystore or env.get("WARDEN_KEYSTORE")
    if keystore:
        data = read_keystore(Path(keystore))  # a missing or foreign file is refused before any prompt
        password = env.get("WARDEN_KEYSTORE_PASSWORD")
        if password is None:
            if ask_password is None:
                raise BadInput("keystore needs a password: set WARDEN_KEYSTORE_PASSWORD")
            password = ask_password(f"password for keystore {keystore}: ")
        return signer_from_keystore(Path(keystore), password, data)
    if env.get("PRIVATE_KEY"):
        return signer_from_key(env["PRIVATE_KEY"], "PRIVATE_KEY")
    raise BadInput("no signer: pass --private-key, or set PRIVATE_KEY, or WARDEN_KEYSTORE (+ password)")
