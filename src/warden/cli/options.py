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
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import typer
from typer.models import ParameterInfo
from typing_extensions import dataclass_transform

from warden.cli.common import (
    RUN,
    ApiTokenOption,
    ApiUrlOption,
    ChainIdOption,
    ChainOption,
    HostOption,
    JsonOption,
    KeystoreOption,
    NodesFileOption,
    PortOption,
    PrivateKeyOption,
    RpcUrlOption,
    TimeoutOption,
    WaitOption,
    WideOption,
)
from warden.cli.profile import NO_PROFILE, Profile, load_profile
from warden.errors import BadInput

if TYPE_CHECKING:
    from warden.chain.app import AppAuth
    from warden.chain.connection import Chain
    from warden.chain.kms import KmsRegistry
    from warden.chain.logcache import LogCache
    from warden.chain.signer import Signer
    from warden.changes.flow import Delivery
    from warden.cli.changes import Writer
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


FromBlockOption = Annotated[
    int | None,
    typer.Option(
        "--from-block",
        metavar="N",
        min=0,
        help="On a node without old state (pruned): read history from block N when the app's creation block "
        "cannot be found (default: the KMS factory's event for it, else 0; or the profile's from_block).",
    ),
]


KEYWORD = inspect.Parameter.KEYWORD_ONLY
T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def option_group(cls: type[T]) -> type[T]:
    """A frozen dataclass whose Annotated fields are options (and whose fields typed as another group nest it);
    a `profile` field receives the loaded profile."""
    group = dataclasses.dataclass(frozen=True)(cls)
    group.__option_group__ = True  # type: ignore[attr-defined]
    return group


@option_group
class ChainOptions:
    """Which chain: --rpc-url / ETH_RPC_URL, else the profile's, else --chain's public RPC, else the devnet."""

    rpc_url: RpcUrlOption = None
    chain: ChainOption = None
    chain_id: ChainIdOption = None
    from_block: FromBlockOption = None
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
        from warden.chain.tx import TX_EXPLORERS

        url, expected = self.rpc()
        chain = Chain.connect(url, expected_chain_id=expected)
        RUN.explorer = self.profile.explorer_url or TX_EXPLORERS.get(chain.chain_id)  # tx links in tables
        chain.limits = self.profile.provider_limits()
        chain.scan_from = self.from_block if self.from_block is not None else self.profile.from_block
        return chain

    def app(self, text: str) -> AppAuth:
        """APP (an address, else a CVM's instance id, name or UUID, or an app name through the control plane),
        checked to be a DstackApp (see warden.cli.connect.resolve_app)."""
        from warden.cli.connect import resolve_app

        return resolve_app(text, self.connect)

    def kms(self, kms: KmsOptions) -> KmsRegistry:
        """The DstackKms `kms` names, checked to be one."""
        from warden.chain.kms import KmsRegistry

        address = kms.address()
        return KmsRegistry.open(self.connect(), address)


@option_group
class KmsOptions:
    kms: KmsOption = None
    profile: Profile = NO_PROFILE

    def address(self) -> str:
        """--kms, else WARDEN_KMS / KMS_CONTRACT_ADDR, else the profile's, else the running devnet's."""
        from warden.chain.inputs import parse_address
        from warden.devnet.state import load_state

        from_env = next((os.environ[n] for n in ("WARDEN_KMS", "KMS_CONTRACT_ADDR") if os.environ.get(n)), None)
        text = self.kms or from_env or self.profile.kms
        if not text:
            state = load_state()
            if state is None:
                raise BadInput("no KMS address: pass --kms, set WARDEN_KMS, or add kms to a profile")
            text = state.kms
        return parse_address(text, "KMS address")  # malformed: refused before any network call


RequireKeyFlag = Annotated[
    bool,
    typer.Option(
        "--require-key",
        help="Refuse to run without a named signer, even on the devnet (no fallback to its test key); or "
        "require_key = true in the profile.",
    ),
]


@option_group
class SignerOptions:
    """Who signs: --private-key, --keystore / WARDEN_KEYSTORE, PRIVATE_KEY, the profile's keystore; on the
    devnet's RPC with none of them, the devnet's test key (unless --require-key or the profile's require_key)."""

    private_key: PrivateKeyOption = None
    keystore: KeystoreOption = None
    require_key: RequireKeyFlag = False
    profile: Profile = NO_PROFILE

    def named(self) -> bool:
        return bool(self.private_key or self.keystore or os.environ.get("WARDEN_KEYSTORE")
                    or os.environ.get("PRIVATE_KEY") or self.profile.keystore)  # fmt: skip

    def signer(self, chain: Chain) -> Signer:
        from warden.cli.connect import signer_for

        keystore = self.keystore
        if not (self.private_key or keystore or os.environ.get("WARDEN_KEYSTORE") or os.environ.get("PRIVATE_KEY")):
            keystore = self.profile.keystore
        required = self.require_key or bool(self.profile.require_key)
        return signer_for(chain, self.private_key, keystore, require_key=required)


@option_group
class DeliveryOptions:
    """How a change is carried out: sent (--wait, --timeout), or written for the owner (--safe-batch, --calldata)."""

    wait: WaitOption = False
    timeout: TimeoutOption = 60.0
    safe_batch: SafeBatchOption = None
    calldata: CalldataFlag = False

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


@option_group
class ControlPlaneOptions:
    api_url: ApiUrlOption = None
    api_token: ApiTokenOption = None
    profile: Profile = NO_PROFILE

    def client(self) -> ControlPlaneClient:
        from warden.cli.connect import control_plane

        return control_plane(self.api_url or self.profile.api_url, self.api_token or self.profile.api_token)


@option_group
class NodesOptions:
    nodes_file: NodesFileOption = None
    profile: Profile = NO_PROFILE

    def inventory(self) -> tuple[Inventory, str]:
        """The node inventory and where it came from (see warden.cli.connect.load_inventory)."""
        from warden.cli.connect import load_inventory

        path = self.nodes_file or (Path(self.profile.nodes_file) if self.profile.nodes_file else None)
        return load_inventory(path)


@option_group
class WriteOptions:
    """Every allowlist write's options: the chain, who signs, how the change is carried out, and --json."""

    network: ChainOptions
    signer: SignerOptions
    delivery: DeliveryOptions
    json_out: JsonOption = False
    wide: WideOption = False

    def writer(self) -> Writer:
        from warden.cli.changes import Writer

        return Writer(self.delivery.delivery(), self.signer, self.json_out)


@option_group
class FleetWriteOptions:
    """A command that writes to the chain and to the control plane (`deploy`, `cvms replicate`)."""

    kms: KmsOptions
    network: ChainOptions
    signer: SignerOptions
    plane: ControlPlaneOptions
    json_out: JsonOption = False


NoCacheFlag = Annotated[bool, typer.Option("--no-cache", help="Scan the chain from scratch, ignoring the cache.")]


@option_group
class ReadOptions:
    """A read of an allowlist: the chain, node names for its devices, the log cache, --json."""

    network: ChainOptions
    nodes: NodesOptions
    no_cache: NoCacheFlag = False
    json_out: JsonOption = False
    wide: WideOption = False

    def cache(self) -> LogCache | None:
        from warden.cli.connect import log_cache

        return None if self.no_cache else log_cache()


@option_group
class ServiceOptions:
    """A service that answers from a DstackKms (`kms serve`, `auth serve`): the chain, the KMS, where to listen."""

    network: ChainOptions
    kms: KmsOptions
    host: HostOption = "127.0.0.1"
    port: PortOption = 8000


LIMIT_HELP = "Only the first N (one page of the control plane's list)."
LimitOption = Annotated[int | None, typer.Option("--limit", metavar="N", help=LIMIT_HELP)]
AllFlag = Annotated[bool, typer.Option("--all", help="Every one, page after page [the default].")]


@option_group
class ListOptions:
    """A control-plane listing: where it is, how much of it (--limit N or --all), and --json."""

    plane: ControlPlaneOptions
    limit: LimitOption = None
    every: AllFlag = False
    json_out: JsonOption = False
    wide: WideOption = False

    def first(self) -> int | None:
        """What to ask the control plane's list for: one page of N, or (None) every page."""
        if self.limit is not None and self.every:
            raise BadInput("--limit and --all contradict each other: pass one of them")
        if self.limit is not None and self.limit < 1:
            raise BadInput(f"invalid --limit {self.limit}: expected 1 or more")
        return self.limit


# -- one command's own options, grouped so its function stays short ---------------------------------------

DeviceIdsOption = Annotated[
    list[str] | None, typer.Option("--device", metavar="DEVICE_ID", help="Allowed device id (repeatable).")
]
ComposeHashesOption = Annotated[
    list[str] | None, typer.Option("--compose-hash", metavar="HASH", help="Allowed compose hash (repeatable).")
]
AllowAnyDeviceFlag = Annotated[
    bool, typer.Option("--allow-any-device", help="Let any device the KMS trusts boot the app.")
]
RequireTcbFlag = Annotated[
    bool, typer.Option("--require-tcb-up-to-date", help="Refuse boots whose TCB is not UpToDate.")
]
DisableUpgradesFlag = Annotated[
    bool, typer.Option("--disable-upgrades", help="Make the app contract non-upgradeable forever.")
]


@option_group
class NewAppOptions:
    """What a new DstackApp allows from its creation (`warden app deploy`)."""

    device: DeviceIdsOption = None
    compose_hash: ComposeHashesOption = None
    allow_any_device: AllowAnyDeviceFlag = False
    require_tcb_up_to_date: RequireTcbFlag = False
    disable_upgrades: DisableUpgradesFlag = False

    def ids(self) -> tuple[list[bytes], list[bytes]]:
        """The device ids and compose hashes, parsed; malformed or repeated ones are refused."""
        from warden.chain.allowlist import reject_duplicates
        from warden.chain.inputs import parse_bytes32

        devices = [parse_bytes32(d, "device id") for d in self.device or []]
        hashes = [parse_bytes32(h, "compose hash") for h in self.compose_hash or []]
        reject_duplicates(devices, "device id")
        reject_duplicates(hashes, "compose hash")
        return devices, hashes


TargetNodeOption = Annotated[
    str | None, typer.Option("--node", metavar="NAME", help="Target node (from the inventory).")
]
TargetDeviceOption = Annotated[str | None, typer.Option("--device", metavar="HEX", help="Target device id.")]


@option_group
class TargetOptions:
    """The machine a release would run on (`warden preflight`): a node of the inventory, or a device id."""

    node: TargetNodeOption = None
    device: TargetDeviceOption = None

    def check(self) -> None:
        if self.node and self.device:
            raise BadInput("pass at most one of --node and --device")

    def device_id(self, nodes: NodesOptions) -> bytes | None:
        """The device id named (a node resolved through the inventory); None when neither is given."""
        from warden.fleet.devices import resolve_devices

        self.check()
        if not (self.node or self.device):
            return None
        inventory, source = nodes.inventory()
        return resolve_devices([self.node or self.device or ""], inventory, source)[0].device_id


OsImageOption = Annotated[
    str | None, typer.Option("--os-image", metavar="HASH", help="OS image the CVM boots (checked on DstackKms).")
]
KmsUrlOption = Annotated[str | None, typer.Option("--kms-url", metavar="URL", help="KMS the CVM will ask.")]
GuestVersionOption = Annotated[
    str | None, typer.Option("--guest-version", metavar="VERSION", help="dstack guest image version, e.g. 0.5.7.")
]
PassSkippedFlag = Annotated[
    bool,
    typer.Option(
        "--allow-skipped", help="Exit 0 even when some checks could not run (they are still listed as skipped)."
    ),
]


@option_group
class PreflightOptions:
    """The checks of `warden preflight` that run only when given what they need (--os-image, --kms-url,
    --guest-version), and whether a check that could not run still lets it pass (--allow-skipped)."""

    os_image: OsImageOption = None
    kms_url: KmsUrlOption = None
    guest_version: GuestVersionOption = None
    allow_skipped: PassSkippedFlag = False

    def os_image_hash(self) -> bytes | None:
        from warden.chain.inputs import parse_bytes32

        return parse_bytes32(self.os_image, "OS image hash") if self.os_image else None


CvmNameOption = Annotated[
    str | None,
    typer.Option("--name", metavar="CVM", help="CVM name [default: the manifest's name (or file name)-NODE]."),
]
AppIdOption = Annotated[
    str | None,
    typer.Option(
        "--app-id",
        "--custom-app-id",
        metavar="ADDR",
        help="Run under this existing DstackApp (0x…, app_…); refused, never replaced, if it cannot be used.",
    ),
]
NewAppAnyDeviceFlag = Annotated[
    bool,
    typer.Option("--allow-any-device", help="New app only: set allowAnyDevice at creation (any trusted node)."),
]


@option_group
class DeployOptions:
    """How `warden deploy` places a CVM: its name, the app it runs under (an existing one, or a new one,
    perhaps allowing any device), and how long a new app's deployment is waited for."""

    name: CvmNameOption = None
    app_id: AppIdOption = None
    allow_any_device: NewAppAnyDeviceFlag = False
    timeout: TimeoutOption = 120.0


ReplicaNameOption = Annotated[
    str | None, typer.Option("--name", metavar="NEW", help="Name of the replica [default: CVM-NODE].")
]
AllowDeviceFlag = Annotated[
    bool,
    typer.Option(
        "--allow-device", help="If the node's device is not allowed, send addDevice and wait for it to be mined first."
    ),
]
PlaceSkippedFlag = Annotated[
    bool,
    typer.Option(
        "--allow-skipped",
        help="Place the replica even when a check could not run (e.g. no KMS known to check registration).",
    ),
]


@option_group
class ReplicaOptions:
    """How `warden cvms replicate` places a replica: its name, whether the node's device may be added first
    (waiting up to --timeout for it), and whether a check that could not run still lets it through."""

    name: ReplicaNameOption = None
    allow_device: AllowDeviceFlag = False
    timeout: TimeoutOption = 60.0
    allow_skipped: PlaceSkippedFlag = False


def _is_option(hint: Any) -> bool:
    return get_origin(hint) is Annotated and any(isinstance(a, ParameterInfo) for a in get_args(hint)[1:])


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and getattr(hint, "__option_group__", False)


def _spread(group: type[Any]) -> list[inspect.Parameter]:
    """A group's options as keyword parameters, nested groups' included."""
    hints = get_type_hints(group, include_extras=True)
    params: list[inspect.Parameter] = []
    for field in dataclasses.fields(group):
        hint = hints[field.name]
        if _is_group(hint):
            params += _spread(hint)
        elif _is_option(hint):
            params.append(inspect.Parameter(field.name, KEYWORD, default=field.default, annotation=hint))
    return params


def _build(group: type[Any], values: dict[str, Any], profile: Profile) -> Any:
    """The group (and its nested groups) from the parsed option values; the profile where it has a field."""
    hints = get_type_hints(group, include_extras=True)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(group):
        hint = hints[field.name]
        if _is_group(hint):
            fields[field.name] = _build(hint, values, profile)
        elif _is_option(hint):
            fields[field.name] = values.pop(field.name)
        elif field.name == "profile":
            fields["profile"] = profile
    return group(**fields)


def grouped(command: Callable[..., None]) -> Callable[..., None]:
    """Spread each option-group parameter of `command` into its options (see the module docstring)."""
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, type[Any]] = {}
    for param in inspect.signature(command).parameters.values():
        hint = hints[param.name]
        if _is_group(hint):
            groups[param.name] = hint
            params += _spread(hint)
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
        for name, group in groups.items():
            kwargs[name] = _build(group, kwargs, profile)
        command(**kwargs)

    del run.__wrapped__  # Typer must read the spread signature below, not the command's own
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def add_and_remove(target: typer.Typer, change: Callable[..., None], add_doc: str, remove_doc: str) -> None:
    """Register `add` and `remove` (and the hidden alias `rm`) on `target`: the same options, one verb.

    `change(add, …)` takes whether to add first, then the commands' own parameters."""
    hints = get_type_hints(change, include_extras=True)
    params = list(inspect.signature(change).parameters.values())[1:]
    for add, name, doc in ((True, "add", add_doc), (False, "remove", remove_doc)):
        command = functools.partial(change, add)
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: hints[p.name] for p in params}
        command.__doc__ = doc
        command.__name__ = f"{name}_command"  # type: ignore[attr-defined]
        target.command(name)(grouped(command))
        if not add:
            target.command("rm", hidden=True)(grouped(command))
