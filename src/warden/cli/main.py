"""The `warden` command: one Typer app with a sub-app per command group."""

from __future__ import annotations

from warden import __version__
from warden.cli import allow_devices, attest, auth, compose_hashes, cvms, devnet, keys, kms, nodes
from warden.cli import app as app_commands
from warden.cli import compose as compose_commands
from warden.cli.common import new_app, stdout
from warden.cli.deploy import deploy_command
from warden.cli.preflight import preflight_command
from warden.cli.serve import serve_command

app = new_app(
    "warden",
    "Which code may run on which machines: the on-chain allowlists of dstack apps, checked and fixed "
    "from the chain itself.",
)
app.add_typer(kms.app)
app.add_typer(app_commands.app)
app.add_typer(allow_devices.app)
app.add_typer(attest.app)
app.add_typer(compose_hashes.app)
app.add_typer(devnet.app)
app.command("preflight")(preflight_command)
app.command("serve")(serve_command)
app.add_typer(auth.app)
app.add_typer(keys.app)
app.add_typer(compose_commands.app)
app.add_typer(nodes.app)
app.add_typer(cvms.app)
app.command("deploy")(deploy_command)


@app.command("version")
def version() -> None:
    """Print warden's version."""
    stdout.print(f"warden {__version__}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
