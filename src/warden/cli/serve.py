"""`warden serve`: the control plane (HTTP API + dashboard) over the fleet inventory."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from warden.cli.common import (
    CollateralOption,
    DatabaseUrlOption,
    HostOption,
    PccsUrlOption,
    PortOption,
    RootCaOption,
    WorkersOption,
    flag,
    note,
)
from warden.cli.connect import attestation_policy, control_plane_secret, inventory_database
from warden.cli.options import ChainOptions, grouped, option_group
from warden.devnet.state import warden_home
from warden.errors import BadInput, OperationFailed
from warden.files import write_secret_file

if TYPE_CHECKING:  # the web stack is imported only when serving
    from fastapi import FastAPI

    from warden.web.plane import ControlPlane

# the single key this option named signed for every workspace; each workspace now has its own signer
RETIRED_OPERATOR_KEY_ENV = "WARDEN_OPERATOR_KEY"


def write_token_file(path: Path, token: str) -> None:
    """The bootstrap token, readable by the owner only (never printed)."""
    write_secret_file(path, token + "\n")


WorkspaceOption = Annotated[str, flag("--workspace", "Workspace created on first start.", metavar="NAME")]
TokenFileOption = Annotated[
    Path | None,
    flag(
        "--token-file",
        "Where the first start writes the workspace's API token (0600) [default: $WARDEN_HOME/api-token].",
        metavar="FILE",
    ),
]


SERVE_SPEC_ENV = "WARDEN_SERVE_SPEC"  # how `serve --workers N` hands its resolved options to each worker
WATCH_EVERY_SECONDS = 2.0  # how often the watcher looks for drift and allowlist changes, and sends alerts


@option_group
class Listen:
    """Where the control plane listens, and in how many processes."""

    host: HostOption = "127.0.0.1"
    port: PortOption = 8080
    workers: WorkersOption = None

    def processes(self) -> int:
        count = self.workers if self.workers is not None else (os.cpu_count() or 1)
        if count < 1:
            raise BadInput(f"invalid --workers {count}: at least 1")
        return count


@dataclass(frozen=True)
class PlaneSpec:
    """What a control-plane process needs, resolved once by `serve` (workers share the database, the secret key
    and the files, nothing in memory)."""

    database_url: str
    rpc_urls: list[str]
    collateral: str | None
    root_ca: str | None
    home: str
    pccs_url: str | None = None

    def build(self) -> ControlPlane:
        from warden.fleet.store import Fleet
        from warden.web.plane import ControlPlane

        collateral, root_ca = (Path(p) if p else None for p in (self.collateral, self.root_ca))
        verifies = collateral is not None or self.pccs_url
        policy = attestation_policy(collateral, root_ca, self.pccs_url) if verifies else None
        secret = control_plane_secret()
        # instances sharing the database and the secret key accept each other's sessions, across restarts
        return ControlPlane(Fleet.open(self.database_url), self.rpc_urls, policy, secret, Path(self.home) / "cache",
                            session_secret=secret.derive("dashboard sessions"))  # fmt: skip


def control_plane_worker_app() -> FastAPI:
    """One worker of `serve --workers N` (uvicorn's factory)."""
    from warden.web.app import create_control_plane_app

    return create_control_plane_app(
        PlaneSpec(**json.loads(os.environ[SERVE_SPEC_ENV])).build(), watch_every_seconds=WATCH_EVERY_SECONDS
    )


@grouped
def serve_command(
    network: ChainOptions,
    listen: Listen,
    database_url: DatabaseUrlOption = None,
    workspace: WorkspaceOption = "default",
    token_file: TokenFileOption = None,
    root_ca: RootCaOption = None,
    collateral: CollateralOption = None,
    pccs_url: PccsUrlOption = None,
) -> None:
    """Serve the control plane: JSON API under /api (OpenAPI at /api/openapi.json) and the dashboard.

    Changes a workspace makes in the dashboard are signed only with that workspace's own signer
    (`warden workspace set-signer`), and only for apps it owns on chain; otherwise they are handed back as a
    Safe batch / calldata. Signers are sealed under WARDEN_SECRET_KEY (or $WARDEN_HOME/secret.key).
    Node quotes are verified with --collateral FILE or with collateral fetched from --pccs-url (Intel's root unless
    --root-ca names another).

    Example: warden serve --rpc-url http://127.0.0.1:8545 --database-url postgresql://warden@db/warden
    """
    import uvicorn

    from warden.fleet.store import Fleet
    from warden.web.app import create_control_plane_app

    processes = listen.processes()
    rpc_urls = _rpc_urls(network)
    if collateral is not None and root_ca is None:
        raise BadInput("pass --root-ca and --collateral together (they verify node quotes)")
    if root_ca is not None and collateral is None and not pccs_url:
        raise BadInput("pass --root-ca with --collateral or --pccs-url (they verify node quotes)")
    if collateral is not None or pccs_url:
        # unreadable files and a malformed PCCS URL are refused here, not in every worker
        attestation_policy(collateral, root_ca, pccs_url)
    if os.environ.get(RETIRED_OPERATOR_KEY_ENV):
        raise BadInput(
            f"{RETIRED_OPERATOR_KEY_ENV} is no longer read: one key must not sign for every workspace. Unset it and "
            "give each workspace its own signer: warden workspace set-signer NAME --keystore FILE"
        )
    control_plane_secret()  # made once (0600) before any worker reads it
    spec = PlaneSpec(inventory_database(database_url), rpc_urls, str(collateral) if collateral else None,
                     str(root_ca) if root_ca else None, str(warden_home()),
                     pccs_url=None if collateral is not None else pccs_url)  # fmt: skip
    fleet = Fleet.open(spec.database_url)  # migrated once, here
    try:
        if not fleet.has_workspaces():
            ref, token = fleet.create_workspace(workspace)
            path = token_file or warden_home() / "api-token"
            write_token_file(path, token)
            note(f"created workspace {ref.name}; its API token is in {path} (export WARDEN_API_TOKEN=$(cat {path}))")
    finally:
        fleet.close()
    where = f"http://{listen.host}:{listen.port}"
    note(f"control plane on {where} (dashboard /, API /api, OpenAPI /api/openapi.json; {processes} worker(s)); "
         "Ctrl-C stops")  # fmt: skip
    options: dict[str, Any] = {"host": listen.host, "port": listen.port, "log_level": "warning", "access_log": False}
    if processes > 1:
        os.environ[SERVE_SPEC_ENV] = json.dumps(asdict(spec))
        uvicorn.run("warden.cli.serve:control_plane_worker_app", factory=True, workers=processes, **options)
        return
    plane = spec.build()
    try:
        uvicorn.run(create_control_plane_app(plane, watch_every_seconds=WATCH_EVERY_SECONDS), **options)
    finally:
        plane.close()


def _rpc_urls(network: ChainOptions) -> list[str]:
    """The RPC URLs the control plane reads allowlists through, each app from the first that serves its chain:
    --rpc-url / ETH_RPC_URL, the profile's, or --chain's public RPC (never the devnet's unasked). With a chain
    id named (--chain, --chain-id, the profile's), a URL serving another chain is refused at start."""
    from warden.chain.connection import Chain
    from warden.chain.rpc import redact_url

    profile = network.profile
    if not (network.rpc_url or network.chain or profile.rpc_url or profile.chain):
        raise BadInput("pass --rpc-url (or set ETH_RPC_URL): allowlists are read from the chain")
    url, expected = network.rpc()
    urls = [u.strip() for u in url.split(",") if u.strip()]
    if expected is not None:  # an unreachable URL only warns: the control plane starts while an RPC is down
        for one in urls:
            try:
                Chain.connect(one, expected_chain_id=expected, retries=0).close()
            except OperationFailed as exc:
                note(f"warning: cannot check the chain id of {redact_url(one)} yet ({exc})")
    return urls
