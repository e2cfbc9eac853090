"""`warden workspace …`: the control plane's workspaces (teams), their API tokens and their own signers.

These act on the control plane's database directly (--database-url / WARDEN_DATABASE_URL; the devnet's
while it is up), as its administrator does; a workspace token cannot do any of this through the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warden.cli.common import DatabaseUrlOption, JsonOption, emit, flag, new_app, note, rows_table, stdout
from warden.cli.connect import ask_password, control_plane_secret, inventory_database
from warden.errors import BadInput

if TYPE_CHECKING:
    from warden.fleet.store import Fleet

app = new_app(
    "workspace",
    "Workspaces of the control plane: create them, list them, rotate their API tokens, set their signers.",
)
app.info.epilog = "\b\nExample: warden workspace ls --json"

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Workspace name, as `warden workspace ls` shows it.")]


def open_inventory(database_url: str | None) -> Fleet:
    from warden.fleet.store import Fleet

    return Fleet.open(inventory_database(database_url))


@app.command("create")
def create_command(name: NameArgument, database_url: DatabaseUrlOption = None, json_out: JsonOption = False) -> None:
    """Create a workspace and print its API token (shown once: only its hash is kept).

    The new workspace sees no node, app or CVM of any other, and signs nothing until it has a signer.

    \b
    Example: warden workspace create team-b --json
    """
    fleet = open_inventory(database_url)
    try:
        workspace, token = fleet.create_workspace(name)
    finally:
        fleet.close()

    def human() -> None:
        stdout.print(f"created workspace {workspace.name}; its API token (shown once, keep it secret):", markup=False)
        stdout.print(token, markup=False)

    emit(json_out, {"workspace": workspace.name, "token": token}, human)


@app.command("ls")
def ls_command(database_url: DatabaseUrlOption = None, json_out: JsonOption = False) -> None:
    """One row per workspace: name, API tokens, apps, and the address its changes are signed with.

    \b
    Example: warden workspace ls --json
    """
    from warden.cli.nodes import when

    fleet = open_inventory(database_url)
    try:
        rows = fleet.workspaces()
    finally:
        fleet.close()

    human = rows_table(
        ("workspace", "tokens", "apps", "signer", "created (UTC)"),
        [
            (r.name, str(r.tokens), str(r.apps), r.signer or "- (Safe batch / calldata)", when(r.created_at))
            for r in rows
        ],
        "no workspace yet: warden workspace create NAME",
    )

    emit(json_out, {"workspaces": [row.as_json() for row in rows]}, human)


app.command("list", hidden=True)(ls_command)


@app.command("rotate-token")
def rotate_token_command(
    name: NameArgument, database_url: DatabaseUrlOption = None, json_out: JsonOption = False
) -> None:
    """Replace every API token of the workspace with one new token (shown once).

    The old tokens stop working at once, and so do dashboard sessions signed in with them.

    \b
    Example: warden workspace rotate-token team-b --json
    """
    fleet = open_inventory(database_url)
    try:
        workspace = fleet.workspace(name)
        token = fleet.rotate_token(workspace)
    finally:
        fleet.close()

    def human() -> None:
        stdout.print(f"new API token of workspace {workspace.name} (shown once; the old ones no longer work):",
                     markup=False)  # fmt: skip
        stdout.print(token, markup=False)

    emit(json_out, {"workspace": workspace.name, "token": token}, human)


KeystoreOption = Annotated[
    Path | None,
    flag(
        "--keystore",
        "Encrypted keystore of the key that signs this workspace's changes; password from "
        "WARDEN_KEYSTORE_PASSWORD or a prompt.",
        metavar="FILE",
    ),
]
ClearFlag = Annotated[bool, flag("--clear", "Forget the signer: changes become Safe batch / calldata.")]


@app.command("set-signer")
def set_signer_command(
    name: NameArgument,
    keystore: KeystoreOption = None,
    clear: ClearFlag = False,
    database_url: DatabaseUrlOption = None,
    json_out: JsonOption = False,
) -> None:
    """Set (or --clear) the one key the control plane signs this workspace's changes with.

    The key signs only for apps it owns on chain; for any other app the dashboard hands the change back as
    a Safe batch / calldata. It is stored sealed under WARDEN_SECRET_KEY (or $WARDEN_HOME/secret.key): the
    control plane must be started with the same secret key.

    \b
    Example: warden workspace set-signer team-b --keystore team-b.json
    """
    if clear == (keystore is not None):
        raise BadInput("pass either --keystore FILE or --clear")
    fleet = open_inventory(database_url)
    try:
        workspace = fleet.workspace(name)
        if keystore is None:
            previous = fleet.clear_signer(workspace)
            address = None
        else:
            from warden.chain.signer import load_signer
            from warden.fleet.workspace_signers import assign_signer

            secret = control_plane_secret()
            signer = load_signer(keystore=str(keystore), env=_password_env(), ask_password=ask_password)
            assign_signer(fleet, secret, workspace, signer)
            previous, address = None, signer.address
    finally:
        fleet.close()

    def human() -> None:
        if address is not None:
            stdout.print(f"workspace {workspace.name} now signs its own apps' changes with {address}", markup=False)
        elif previous:
            stdout.print(f"workspace {workspace.name} has no signer any more (was {previous})", markup=False)
        else:
            stdout.print(f"workspace {workspace.name} had no signer; nothing changed", markup=False)

    if address is not None:
        note("the key is sealed in the inventory; the control plane needs the same secret key to use it")
    emit(json_out, {"workspace": workspace.name, "signer": address}, human)


def _password_env() -> dict[str, str]:
    """Only the keystore password from the environment: never fall back to PRIVATE_KEY here."""
    password = os.environ.get("WARDEN_KEYSTORE_PASSWORD")
    return {"WARDEN_KEYSTORE_PASSWORD": password} if password is not None else {}
