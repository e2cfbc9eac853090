"""Option groups: the chain, signer, delivery, control-plane and inventory options, declared once and
resolved once into objects that commands receive.

A command names a group as one parameter; `@grouped` spreads the group's options into the command's
signature (so Typer shows and parses them as usual), adds `--profile`, loads the profile once, and calls
the command with one object per group:

    @app.command("add")
    @grouped
    def add_command(app_text: AppArgument, network: ChainOptions, signer: SignerOptions) -> None:
        chain = network.connect()
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin, get_type_hints

import typer
from typer.models import ParameterInfo

from warden.cli.common import (
    ApiTokenOption,
    ApiUrlOption,
    ChainIdOption,
    ChainOption,
    KeystoreOption,
    NodesFileOption,
    PrivateKeyOption,
    RpcUrlOption,
    TimeoutOption,
    WaitOption,
)
from warden.cli.profile import NO_PROFILE, Profile, load_profile
from warden.errors import BadInput

if TYPE_CHECKING:
    from warden.chain.app import AppAuth
    from warden.chain.connection import Chain
    from warden.chain.kms import KmsRegistry
    from warden.chain.signer import Signer
    from warden.changes.flow import Delivery
    from warden.fleet.inventory import Inventory
    from warden.web.client import ControlPlaneClient

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        envvar="WARDEN_PROFILE",
        show_envvar=True,
        help="Defaults from this profile of the user config file (`warden` config.toml); flags and env win.",
    ),
]
SafeBatchOption = Annotated[
    Path | None,
    typer.Option(
        "--safe-batch",
        metavar="FILE",
        help="Owner is a Safe: write the changes as one Transaction Builder batch instead of sending.",
    ),
]
CalldataFlag = Annotated[bool, typer.Option("--calldata", help="Print target + calldata per change; send nothing.")]
KmsOption = Annotated[
    str | None,
    typer.Option(
        "--kms",
        metavar="ADDR",
        help="DstackKms address (or WARDEN_KMS / KMS_CONTRACT_ADDR, the profile's, or the devnet's).",
    ),
]


@dataclasses.dataclass(frozen=True)
class ChainOptions:
    """Which chain: --rpc-url / ETH_RPC_URL, else the profile's, else --chain's public RPC, else the devnet."""

    rpc_url: RpcUrlOption = None
    chain: ChainOption = None
    chain_id: ChainIdOption = None
    profile: Profile = NO_PROFILE

    def rpc(self) -> tuple[str, int | None]:
        """The RPC URL and expected chain id, without connecting (services connect later)."""
        from warden.cli.connect import resolve_rpc

        profile = self.profile
        chain = self.chain or profile.chain
        # a profile's RPC belongs to the profile's chain: another --chain uses that chain's public RPC
        profile_rpc = profile.rpc_url if not (self.chain and profile.chain and self.chain != profile.chain) else None
        chain_id = self.chain_id if self.chain_id is not None else (profile.chain_id if profile_rpc else None)
        return resolve_rpc(self.rpc_url or profile_rpc, chain_id, chain)

    def connect(self) -> Chain:
        from warden.chain.connection import Chain

        url, expected = self.rpc()
        return Chain.connect(url, expected_chain_id=expected)

    def app(self, text: str) -> AppAuth:
        """APP (address, app_ id, or a CVM/app name through the control plane), checked to be a DstackApp."""
        from warden.chain.app import AppAuth
        from warden.cli.connect import app_address

        address = app_address(text)  # malformed input is refused before any network call
        return AppAuth.open(self.connect(), address)

    def kms(self, kms: KmsOptions) -> KmsRegistry:
        """The DstackKms `kms` names, checked to be one."""
        from warden.chain.kms import KmsRegistry

        address = kms.address()
        return KmsRegistry.open(self.connect(), address)


@dataclasses.dataclass(frozen=True)
class KmsOptions:
    kms: KmsOption = None
    profile: Profile = NO_PROFILE

    def address(self) -> str:
        """--kms, else WARDEN_KMS / KMS_CONTRACT_ADDR, else the profile's, else the running devnet's."""
        from warden.chain.inputs import parse_address
        from warden.cli.connect import contract_address

        text = self.kms or next((os.environ[n] for n in ("WARDEN_KMS", "KMS_CONTRACT_ADDR") if os.environ.get(n)),
                                None) or self.profile.kms  # fmt: skip
        address = contract_address(text, (), "kms", "kms address")
        return parse_address(address, "KMS address")  # malformed: refused before any network call


@dataclasses.dataclass(frozen=True)
class SignerOptions:
    """Who signs: --private-key, --keystore / WARDEN_KEYSTORE, PRIVATE_KEY, the profile's keystore; on the
    devnet with none of them, the devnet's test key."""

    private_key: PrivateKeyOption = None
    keystore: KeystoreOption = None
    profile: Profile = NO_PROFILE

    def named(self) -> bool:
        return bool(self.private_key or self.keystore or os.environ.get("WARDEN_KEYSTORE")
                    or os.environ.get("PRIVATE_KEY") or self.profile.keystore)  # fmt: skip

    def signer(self, chain: Chain) -> Signer:
        from warden.cli.connect import signer_for

        keystore = self.keystore
        if not (self.private_key or keystore or os.environ.get("WARDEN_KEYSTORE") or os.environ.get("PRIVATE_KEY")):
            keystore = self.profile.keystore
        return signer_for(chain, self.private_key, keystore)


@dataclasses.dataclass(frozen=True)
class DeliveryOptions:
    """How a change is carried out: sent (--wait, --timeout), or written for the owner (--safe-batch, --calldata)."""

    wait: WaitOption = False
    timeout: TimeoutOption = 60.0
    safe_batch: SafeBatchOption = None
    calldata: CalldataFlag = False
    profile: Profile = NO_PROFILE

    def delivery(self) -> Delivery:
        from warden.changes.flow import Delivery

        if self.safe_batch and self.calldata:
            raise BadInput("choose one of --safe-batch and --calldata")
        if self.timeout <= 0:
            raise BadInput(f"--timeout must be more than 0 seconds, not {self.timeout:g}")
        if self.safe_batch is not None:
            if self.safe_batch.is_dir():
                raise BadInput(f"--safe-batch {self.safe_batch} is a directory")
            return Delivery("safe-batch", safe_batch=self.safe_batch)
        if self.calldata:
            return Delivery("calldata")
        return Delivery("send", wait=self.wait, timeout=self.timeout)


@dataclasses.dataclass(frozen=True)
class ControlPlaneOptions:
    api_url: ApiUrlOption = None
    api_token: ApiTokenOption = None
    profile: Profile = NO_PROFILE

    def client(self) -> ControlPlaneClient:
        from warden.cli.connect import control_plane

        return control_plane(self.api_url or self.profile.api_url, self.api_token or self.profile.api_token)


@dataclasses.dataclass(frozen=True)
class NodesOptions:
    nodes_file: NodesFileOption = None
    profile: Profile = NO_PROFILE

    def inventory(self) -> tuple[Inventory, str]:
        """The node inventory and where it came from (see warden.cli.connect.load_inventory)."""
        from warden.cli.connect import load_inventory

        path = self.nodes_file or (Path(self.profile.nodes_file) if self.profile.nodes_file else None)
        return load_inventory(path)


KEYWORD = inspect.Parameter.KEYWORD_ONLY
GROUPS = (ChainOptions, KmsOptions, SignerOptions, DeliveryOptions, ControlPlaneOptions, NodesOptions)


def _is_option(hint: Any) -> bool:
    return get_origin(hint) is Annotated and any(isinstance(a, ParameterInfo) for a in get_args(hint)[1:])


def grouped(command: Callable[..., None]) -> Callable[..., None]:
    """Spread each option-group parameter of `command` into its options (see the module docstring)."""
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[Any], list[str]]] = {}
    for param in inspect.signature(command).parameters.values():
        hint = hints[param.name]
        if hint in GROUPS:
            group_hints = get_type_hints(hint, include_extras=True)
            names = [f.name for f in dataclasses.fields(hint) if _is_option(group_hints[f.name])]
            groups[param.name] = (hint, names)
            for field in dataclasses.fields(hint):
                if field.name in names:
                    option = group_hints[field.name]
                    params.append(inspect.Parameter(field.name, KEYWORD, default=field.default, annotation=option))
        else:
            params.append(param.replace(kind=KEYWORD, annotation=hint))
    if groups:
        params.append(inspect.Parameter("profile", KEYWORD, default=None, annotation=ProfileOption))
    taken = [p.name for p in params]
    if len(taken) != len(set(taken)):
        raise TypeError(f"{command.__name__}: an option name is used twice in {taken}")

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        profile = load_profile(kwargs.pop("profile", None)) if groups else NO_PROFILE
        for name, (group, names) in groups.items():
            kwargs[name] = group(**{n: kwargs.pop(n) for n in names}, profile=profile)
        command(**kwargs)

    del run.__wrapped__  # Typer must read the spread signature below, not the command's own
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
