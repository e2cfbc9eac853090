"""Profiles: named sets of defaults (RPC, chain, KMS, control plane, keystore, explorer) in the user's
config file, so `warden --profile base-prod …` needs no other flags. Flags beat the environment, which
beats the profile.

    # ~/.config/warden/config.toml
    default_profile = "devnet"          # optional: used when neither --profile nor WARDEN_PROFILE is given

    [profiles.base-prod]
    chain = "base"
    rpc_url = "https://base-mainnet.example/v2/KEY"
    kms = "0x2f83172A49584C017F2B256F0FB2Dca14126Ba9C"
    api_url = "https://warden.example.com"
    keystore = "~/.warden/ops.json"
    explorer_url = "https://basescan.org"
    max_log_range = 10000               # optional: the provider's eth_getLogs limits, when known
    max_batch = 100                     #   (otherwise learned from its errors and remembered)
    batches = true
    from_block = 12000000               # optional: a pruned node's history starts here
    require_key = true                  # optional: never sign with the devnet's test key (as --require-key)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from warden.chain.provider_limits import ProviderLimits
from warden.errors import BadInput
from warden.paths import config_file


@dataclass(frozen=True)
class Profile:
    name: str | None = None
    rpc_url: str | None = None
    chain: str | None = None
    chain_id: int | None = None
    kms: str | None = None
    api_url: str | None = None
    api_token: str | None = None
    keystore: str | None = None
    nodes_file: str | None = None
    explorer_url: str | None = None
    max_log_range: int | None = None
    max_batch: int | None = None
    batches: bool | None = None
    from_block: int | None = None
    require_key: bool | None = None

    def provider_limits(self) -> ProviderLimits:
        """The RPC provider's limits this profile states (unknown ones are learned from the provider)."""
        return ProviderLimits(self.max_log_range, self.max_batch, self.batches is not False)


NO_PROFILE = Profile()
KEYS = {f.name: f.type for f in fields(Profile) if f.name != "name"}
INTEGERS = {"chain_id": 1, "max_log_range": 1, "max_batch": 1, "from_block": 0}  # setting: smallest value
BOOLEANS = {"batches", "require_key"}


def load_profile(name: str | None, path: Path | None = None) -> Profile:
    """The profile `name` (else WARDEN_PROFILE, else the file's default_profile); none when there is none."""
    path = path or config_file()
    name = name or os.environ.get("WARDEN_PROFILE") or None
    if not path.is_file():
        if name:
            raise BadInput(f"no profile {name!r}: there is no config file {path}")
        return NO_PROFILE
    data = _read(path)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise BadInput(f"{path}: [profiles] must be a table of profiles")
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise BadInput(f"{path}: default_profile must be a profile name")
    name = name or default
    if not name:
        return NO_PROFILE
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise BadInput(f"no profile {name!r} in {path} (profiles: {known})")
    return _profile(name, profiles[name], path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}") from None


def _profile(name: str, table: Any, path: Path) -> Profile:
    where = f"{path} [profiles.{name}]"
    if not isinstance(table, dict):
        raise BadInput(f"{where} must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in INTEGERS:
            if not isinstance(value, int) or isinstance(value, bool) or value < INTEGERS[key]:
                raise BadInput(f"{where}: {key} must be an integer >= {INTEGERS[key]}")
        elif key in BOOLEANS:
            if not isinstance(value, bool):
                raise BadInput(f"{where}: {key} must be true or false")
        elif not isinstance(value, str):
            raise BadInput(f"{where}: {key} must be a string")
        values[key] = os.path.expanduser(value) if key in ("keystore", "nodes_file") else value
    return Profile(name=name, **values)
