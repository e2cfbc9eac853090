"""`warden serve`: the control plane (HTTP API + dashboard) over the fleet inventory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from warden.cli.common import RpcUrlOption, note
from warden.devnet.state import warden_home
from warden.errors import BadInput

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="WARDEN_DATABASE_URL",
        show_envvar=True,
        help="Inventory database: sqlite:///FILE or postgresql://USER@HOST/DB [default: $WARDEN_HOME/warden.db].",
    ),
]


def default_database_url() -> str:
    return f"sqlite:///{warden_home() / 'warden.db'}"


def write_token_file(path: Path, token: str) -> None:
    """The bootstrap token, readable by the owner only (never printed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)


def serve_command(
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8080,
    database_url: DatabaseUrlOption = None,
    rpc_url: RpcUrlOption = None,
    workspace: Annotated[
        str, typer.Option("--workspace", metavar="NAME", help="Workspace created on first start.")
    ] = "default",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="Where the first start writes the workspace's API token (0600) [default: $WARDEN_HOME/api-token].",
        ),
    ] = None,
    root_ca: Annotated[
        Path | None,
        typer.Option("--root-ca", metavar="FILE", help="Trust this attestation root (DER) for node quotes (devnet)."),
    ] = None,
    collateral: Annotated[
        Path | None,
        typer.Option("--collateral", metavar="FILE", help="Quote collateral JSON for verifying node quotes."),
    ] = None,
    operator_key_env: Annotated[
        str,
        typer.Option(
            "--operator-key-env",
            metavar="NAME",
            help="Environment variable holding the key the dashboard signs allowlist changes with "
            "(unset: the dashboard offers a Safe batch / calldata instead).",
        ),
    ] = "WARDEN_OPERATOR_KEY",
) -> None:
    """Serve the control plane: JSON API under /api (OpenAPI at /api/openapi.json) and the dashboard.

    Example: warden serve --rpc-url http://127.0.0.1:8545 --database-url postgresql://warden@db/warden
    """
    import uvicorn

    from warden.chain.signer import signer_from_key
    from warden.fleet.store import Fleet
    from warden.kms.attestation_policy import AttestationPolicy, fixed_collateral
    from warden.web.app import create_control_plane_app
    from warden.web.plane import ControlPlane

    if not rpc_url:
        raise BadInput("pass --rpc-url (or set ETH_RPC_URL): allowlists are read from the chain")
    if (root_ca is None) != (collateral is None):
        raise BadInput("pass --root-ca and --collateral together (they verify node quotes)")
    policy = None
    if collateral is not None:
        try:
            policy = AttestationPolicy(
                collateral=fixed_collateral(collateral.read_text()),
                root_ca_der=root_ca.read_bytes() if root_ca else None,
            )
        except OSError as exc:
            raise BadInput(f"cannot read {exc.filename}: {exc.strerror}") from None
    operator_key = os.environ.get(operator_key_env)
    operator = signer_from_key(operator_key, operator_key_env) if operator_key else None
    fleet = Fleet.open(database_url or default_database_url())
    if not fleet.has_workspaces():
        ref, token = fleet.create_workspace(workspace)
        path = token_file or warden_home() / "api-token"
        write_token_file(path, token)
        note(f"created workspace {ref.name}; its API token is in {path} (export WARDEN_API_TOKEN=$(cat {path}))")
    plane = ControlPlane(
        fleet, [u.strip() for u in rpc_url.split(",") if u.strip()], policy, operator, warden_home() / "cache"
    )
    note(f"control plane on http://{host}:{port} (dashboard /, API /api, OpenAPI /api/openapi.json); Ctrl-C stops")
    try:
        uvicorn.run(create_control_plane_app(plane), host=host, port=port, log_level="warning", access_log=False)
    finally:
        plane.close()
