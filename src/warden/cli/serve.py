"""`warden serve`: the control plane (HTTP API + dashboard) over the fleet inventory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from warden.cli.common import CollateralOption, DatabaseUrlOption, HostOption, PortOption, RootCaOption, flag, note
from warden.cli.connect import attestation_policy, control_plane_secret, inventory_database
from warden.cli.options import ChainOptions, grouped
from warden.devnet.state import warden_home
from warden.errors import BadInput, OperationFailed
from warden.files import write_secret_file

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


@grouped
def serve_command(
    network: ChainOptions,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    database_url: DatabaseUrlOption = None,
    workspace: WorkspaceOption = "default",
    token_file: TokenFileOption = None,
    root_ca: RootCaOption = None,
    collateral: CollateralOption = None,
) -> None:
    """Serve the control plane: JSON API under /api (OpenAPI at /api/openapi.json) and the dashboard.

    Changes a workspace makes in the dashboard are signed only with that workspace's own signer
    (`warden workspace set-signer`), and only for apps it owns on chain; otherwise they are handed back as a
    Safe batch / calldata. Signers are sealed under WARDEN_SECRET_KEY (or $WARDEN_HOME/secret.key).

    Example: warden serve --rpc-url http://127.0.0.1:8545 --database-url postgresql://warden@db/warden
    """
    import uvicorn

    from warden.fleet.store import Fleet
    from warden.web.app import create_control_plane_app
    from warden.web.plane import ControlPlane

    rpc_urls = _rpc_urls(network)
    if (root_ca is None) != (collateral is None):
        raise BadInput("pass --root-ca and --collateral together (they verify node quotes)")
    policy = attestation_policy(collateral, root_ca) if collateral is not None else None
    if os.environ.get(RETIRED_OPERATOR_KEY_ENV):
        raise BadInput(
            f"{RETIRED_OPERATOR_KEY_ENV} is no longer read: one key must not sign for every workspace. Unset it and "
            "give each workspace its own signer: warden workspace set-signer NAME --keystore FILE"
        )
    secret = control_plane_secret()
    fleet = Fleet.open(inventory_database(database_url))
    if not fleet.has_workspaces():
        ref, token = fleet.create_workspace(workspace)
        path = token_file or warden_home() / "api-token"
        write_token_file(path, token)
        note(f"created workspace {ref.name}; its API token is in {path} (export WARDEN_API_TOKEN=$(cat {path}))")
    plane = ControlPlane(
        fleet,
        rpc_urls,
        policy,
        secret,
        warden_home() / "cache",
        # instances sharing the database and the secret key accept each other's sessions, across restarts
        session_secret=secret.derive("dashboard sessions"),
    )
    note(f"control plane on http://{host}:{port} (dashboard /, API /api, OpenAPI /api/openapi.json); Ctrl-C stops")
    try:
        uvicorn.run(create_control_plane_app(plane), host=host, port=port, log_level="warning", access_log=False)
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
