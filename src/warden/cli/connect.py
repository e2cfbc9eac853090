"""Where a command's chain, signer, control plane, node inventory and APP come from: flags, environment,
or the running devnet."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from warden.chain.connection import KNOWN_CHAINS, Chain, chain_name
from warden.chain.inputs import HEX_DIGITS, parse_address
from warden.chain.logcache import LogCache
from warden.chain.signer import Signer, load_signer, signer_from_key
from warden.cli.common import PCCS_URL_ENV, RUN, note, stdout
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.devnet.state import load_state, warden_home
from warden.errors import BadInput, OperationFailed, WardenError
from warden.fleet.inventory import Inventory, load_nodes_file, parse_nodes
from warden.paths import cache_dir

if TYPE_CHECKING:
    from warden.chain.app import AppAuth
    from warden.chain.kms import KmsRegistry
    from warden.cli.options import KmsOptions
    from warden.fleet.workspace_signers import SecretKey
    from warden.kms.attestation_policy import (
        AttestationPolicy,  # imported where used: the HTTP client only by the commands that talk to the control plane
    )
    from warden.web.client import ControlPlaneClient


PUBLIC_CHAINS = ("base", "base-sepolia", "ethereum")


def resolve_rpc(rpc_url: str | None, chain_id: int | None = None, chain: str | None = None) -> tuple[str, int | None]:
    """The RPC URL and expected chain id: the flag or ETH_RPC_URL; else a named chain's public RPC; else a
    running devnet's RPC (said on stderr). Nothing is connected to (services connect later)."""
    if chain is not None:
        if chain not in PUBLIC_CHAINS:
            raise BadInput(f"unknown --chain {chain!r}: choose one of {', '.join(PUBLIC_CHAINS)}")
        named_id, public_rpc = KNOWN_CHAINS[chain]
        if chain_id is not None and chain_id != named_id:
            raise BadInput(f"--chain {chain} is chain id {named_id}, but --chain-id says {chain_id}")
        chain_id = named_id
        if not rpc_url:
            note(f"using {chain}'s public RPC {public_rpc}: it is rate-limited, pass --rpc-url for real work")
            rpc_url = public_rpc
    if not rpc_url:
        state = load_state()
        if state is None:
            raise BadInput("no RPC URL: pass --rpc-url or set ETH_RPC_URL (or start a devnet: `warden devnet up`)")
        note(f"using the devnet at {state.rpc_url}")
        rpc_url = state.rpc_url
    return rpc_url, chain_id


def log_cache() -> LogCache:
    """Scanned logs, provider limits and block times, kept between runs in the user cache dir (checked
    against the chain on every use, so every chain and devnet shares the one file safely; see
    warden.chain.logcache)."""
    return LogCache(cache_dir() / "logs.sqlite")


CONTROL_PLANE_NODES = "the control plane's node list"


def control_plane(api_url: str | None = None, api_token: str | None = None) -> ControlPlaneClient:
    """A client of the control plane: the flags, else WARDEN_API_URL and WARDEN_API_TOKEN."""
    from warden.web.client import ControlPlaneClient

    url = api_url or os.environ.get("WARDEN_API_URL")
    token = api_token or os.environ.get("WARDEN_API_TOKEN")
    if not url:
        state = load_state()
        if state is not None and state.api_url and state.api_token:
            note(f"using the devnet's control plane at {state.api_url}")
            url, token = state.api_url, token or state.api_token
    if not url:
        raise BadInput(
            "no control plane: pass --api-url or set WARDEN_API_URL (for the devnet: eval $(warden devnet env))"
        )
    if not token:
        raise BadInput(f"no API token for the control plane at {url}: pass --api-token or set WARDEN_API_TOKEN")
    if api_token and api_token != os.environ.get("WARDEN_API_TOKEN"):
        note("warning: an API token on the command line shows in shell history and `ps`; prefer WARDEN_API_TOKEN")
    return ControlPlaneClient(url, token)


def load_inventory(nodes_file: Path | None) -> tuple[Inventory, str]:
    """The node inventory and a phrase naming where it came from (for error messages).

    A nodes file wins; without one, the control plane's node list when WARDEN_API_URL is set.
    """
    if nodes_file is None:
        if os.environ.get("WARDEN_API_URL"):
            try:
                with control_plane() as plane:
                    return Inventory(parse_nodes(plane.nodes(), CONTROL_PLANE_NODES)), CONTROL_PLANE_NODES
            except OperationFailed as exc:
                # node names are a convenience here: the chain still answers without them
                note(f"warning: no node names ({exc})")
                return Inventory(), f"{CONTROL_PLANE_NODES} (unreachable)"
        return Inventory(), "the inventory"
    return load_nodes_file(nodes_file), f"nodes file {nodes_file}"


def _is_address_shaped(text: str) -> bool:
    """40 hex digits, with or without `0x` / `app_`: an app address, or a CVM's instance id (same shape)."""
    digits = text[4:] if text.lower().startswith("app_") else text[2:] if text.lower().startswith("0x") else text
    return len(digits) == 40 and all(c in HEX_DIGITS for c in digits)


def resolve_app(text: str, connect: Callable[[], Chain]) -> AppAuth:
    """APP, checked to be a DstackApp: first an address where the chain holds a contract; else, through the
    control plane (WARDEN_API_URL), a CVM's instance id, name or UUID, or an app's name. Which one it matched
    is said on stderr."""
    from warden.chain.app import AppAuth

    stripped = text.strip()
    if not _is_address_shaped(stripped):
        address = app_address(stripped)  # a name through the control plane; malformed input refused offline
        return AppAuth.open(connect(), address)
    address = parse_address(stripped, "app address")
    chain = connect()
    if chain.get_code(address):
        return AppAuth.open(chain, address)
    # no contract there: a CVM's instance id has the same 40 hex digits (`0x8dc3…` from dstack tooling)
    nothing = f"no contract at {address} on chain {chain_name(chain.chain_id)}"
    if not os.environ.get("WARDEN_API_URL"):
        raise BadInput(f"{nothing}; if it is a CVM's instance id, set WARDEN_API_URL so the control plane can "
                       "resolve it")  # fmt: skip
    try:
        resolved = _app_through_control_plane(stripped, cvms_only=True)
    except WardenError as exc:
        raise BadInput(f"{nothing}, and the control plane could not say whether it is a CVM's instance id "
                       f"({exc})") from None  # fmt: skip
    if resolved is None:
        raise BadInput(f"{nothing}, and the control plane knows no CVM with that instance id")
    return AppAuth.open(chain, resolved)


def app_address(text: str) -> str:
    """APP as users write it: a DstackApp address (0x…, app_…, any case), or, when WARDEN_API_URL is set,
    a CVM (name, UUID, instance id) or app name that the control plane resolves to its app's address."""
    stripped = text.strip()
    prefixed = stripped.lower().startswith(("app_", "0x"))
    digits = stripped[4:] if stripped.lower().startswith("app_") else stripped
    looks_like_address = prefixed or all(c in HEX_DIGITS for c in digits)
    if not stripped or (looks_like_address and (prefixed or not os.environ.get("WARDEN_API_URL"))):
        return parse_address(stripped, "app address")
    if not os.environ.get("WARDEN_API_URL"):
        raise BadInput(
            f"{text!r} is not an app address; CVM names, UUIDs and instance ids are resolved through the "
            "control plane (set WARDEN_API_URL)"
        )
    if looks_like_address and len(digits) == 40:
        # bare 40-digit hex: an app address, unless the control plane knows it as a CVM's instance id
        try:
            resolved = _app_through_control_plane(stripped, cvms_only=True)
        except WardenError as exc:
            note(f"could not ask the control plane whether {stripped} is a CVM instance id ({exc}); "
                 "taking it as an app address")  # fmt: skip
            resolved = None
        return resolved or parse_address(stripped, "app address")
    resolved = _app_through_control_plane(stripped, cvms_only=False)
    if resolved is None:
        raise BadInput(
            f"{text!r} is not an app address, and the control plane knows no CVM (by name, UUID or instance id) "
            "or app by that name"
        )
    return resolved


def _app_through_control_plane(key: str, *, cvms_only: bool) -> str | None:
    """The app of the CVM `key` (or, unless cvms_only, of the app named `key`); None when neither exists.
    Says on stderr what `key` matched: a CVM's instance id, name or UUID, or an app's name."""
    with control_plane() as plane:
        try:
            cvm = plane.cvm(key)
        except BadInput:  # 404: no such CVM in this workspace
            if cvms_only:
                return None
        else:
            note(f"CVM {cvm['name']} (node {cvm['node']}) runs app {cvm['app']} ({key} is its "
                 f"{_cvm_key_kind(key, cvm)})")  # fmt: skip
            return parse_address(str(cvm["app"]), "app address")
        try:
            app = plane.app(key)
        except BadInput:
            return None
        note(f"app {key} is {app['app']} ({key} is its name)")
        return parse_address(str(app["app"]), "app address")


def _cvm_key_kind(key: str, cvm: dict[str, Any]) -> str:
    """Which of a CVM's keys `key` is: its name, UUID or instance id."""
    if key == cvm["name"]:
        return "name"
    if key.lower() == str(cvm.get("uuid", "")).lower():
        return "UUID"
    return "instance id"


def signer_for(chain: Chain, private_key: str | None, keystore: str | None, *, require_key: bool = False) -> Signer:
    """Flag, keystore or PRIVATE_KEY; with none of them, on the running devnet's RPC only, its public test key
    (said on stdout in the human output); `require_key` (--require-key, the profile's) refuses that fallback."""
    if private_key:
        note("warning: a private key on the command line shows in shell history and `ps`; prefer PRIVATE_KEY")
    # only when no signer was named at all: a bad keystore or key must be an error, never another key signing
    named = private_key or keystore or os.environ.get("WARDEN_KEYSTORE") or os.environ.get("PRIVATE_KEY")
    if not named:
        if require_key:
            raise BadInput("no signer, and --require-key (or the profile's require_key) refuses the devnet's test "
                           "key: pass --private-key, or set PRIVATE_KEY, or WARDEN_KEYSTORE (+ password)")  # fmt: skip
        state = load_state()
        if state is not None and chain.rpc.url == state.rpc_url and chain.chain_id == state.chain_id:
            signer = signer_from_key(DEV_PRIVATE_KEY, "devnet")
            said = (f"signing with the devnet's test key {signer.address} (no PRIVATE_KEY or keystore given; "
                    "--require-key refuses it)")  # fmt: skip
            if RUN.json:
                note(said)  # stdout holds only the JSON document
            else:
                stdout.print(said, markup=False)
            return signer
    return load_signer(private_key=private_key, keystore=keystore, ask_password=ask_password)


def kms_for(chain: Chain, kms: KmsOptions, recorded: str | None = None) -> KmsRegistry | None:
    """The DstackKms to check an app against, if one is known: --kms, WARDEN_KMS / KMS_CONTRACT_ADDR, the
    profile's, `recorded` (the control plane's record of the app), the devnet's when `chain` is the devnet's."""
    from warden.chain.kms import KmsRegistry

    named = kms.kms or next((os.environ[n] for n in ("WARDEN_KMS", "KMS_CONTRACT_ADDR") if os.environ.get(n)), None)
    address = named or kms.profile.kms or recorded
    if not address:
        state = load_state()
        address = state.kms if state is not None and state.chain_id == chain.chain_id else None
    return KmsRegistry.open(chain, address) if address else None


def ask_password(prompt: str) -> str:
    """Ask on the terminal, or read one line piped on stdin; no input at all is bad input, not `Aborted!`."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(typer.prompt(prompt.rstrip().rstrip(":"), hide_input=True))  # typer adds its own ": "
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise BadInput(f"{prompt.rstrip().rstrip(':')}: none given and no terminal to ask on; "
                       "set WARDEN_KEYSTORE_PASSWORD")  # fmt: skip
    return line.rstrip("\r\n")


def inventory_database(database_url: str | None) -> str:
    """The flag or WARDEN_DATABASE_URL; else $WARDEN_HOME/warden.db (the running devnet's, said on stderr)."""
    if database_url:
        return database_url
    if load_state() is not None:
        note(f"using the devnet's inventory in {warden_home()}")
    return f"sqlite:///{warden_home() / 'warden.db'}"


def control_plane_secret() -> SecretKey:
    """The key workspace signers are sealed with: WARDEN_SECRET_KEY, else $WARDEN_HOME/secret.key (made once)."""
    from warden.fleet.workspace_signers import SECRET_KEY_FILE, SecretKey

    return SecretKey.load(warden_home() / SECRET_KEY_FILE)


def collateral_source(collateral: Path | None, pccs_url: str | None) -> Callable[[bytes], Any]:
    """Where quote collateral comes from: the file (--collateral), else a PCCS (--pccs-url / WARDEN_PCCS_URL, else
    dcap-qvl's default), fetched once per platform until its nextUpdate and kept in the user cache dir."""
    from warden.cli.common import read_file
    from warden.kms.attestation_policy import fixed_collateral
    from warden.tee.collateral_source import DEFAULT_PCCS_URL, PccsCollateral, default_cache_file

    if collateral is not None and pccs_url:
        if os.environ.get(PCCS_URL_ENV) != pccs_url:  # a flag overrides the environment, two flags contradict
            raise BadInput("pass --collateral or --pccs-url, not both")
        pccs_url = None
    if collateral is not None:
        return fixed_collateral(read_file(collateral, "collateral").decode(errors="replace"))
    return PccsCollateral(pccs_url or DEFAULT_PCCS_URL, cache_file=default_cache_file())


def attestation_policy(collateral: Path | None, root_ca: Path | None, pccs_url: str | None = None) -> AttestationPolicy:
    """How a service verifies quotes: collateral from the file, else from the PCCS (`collateral_source`), and the
    root it trusts (--root-ca, else Intel's). Unreadable files and a malformed PCCS URL are refused here."""
    from warden.cli.common import read_root_ca
    from warden.kms.attestation_policy import AttestationPolicy

    return AttestationPolicy(collateral=collateral_source(collateral, pccs_url),
                             root_ca_der=read_root_ca(root_ca) if root_ca else None)  # fmt: skip
