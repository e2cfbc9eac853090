"""The `warden` command: one Typer app with a sub-app per command group.

Each group's module is imported only when that group runs (the chain and HTTP libraries are slow to
import), so `warden compose hash` does not pay for what `warden allow-devices list` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden import __version__
from warden.cli.common import JsonOption, WardenGroup, emit, lines, new_app, stdout

if TYPE_CHECKING:
    from typer._click.core import Command, Context  # the click that Typer ships

# name → (module, attribute): a Typer sub-app, or a function that is the whole command. The order is
# the order of `warden --help`: the allowlists first, then releases and fleet, then the services.
COMMANDS: dict[str, tuple[str, str]] = {
    "allow-devices": ("warden.cli.allow_devices", "app"),
    "compose-hashes": ("warden.cli.compose_hashes", "app"),
    "plan": ("warden.cli.policy", "plan_command"),
    "apply": ("warden.cli.policy", "apply_command"),
    "preflight": ("warden.cli.preflight", "preflight_command"),
    "compose": ("warden.cli.compose", "app"),
    "app": ("warden.cli.app", "app"),
    "deploy": ("warden.cli.deploy", "deploy_command"),
    "cvms": ("warden.cli.cvms", "app"),
    "nodes": ("warden.cli.nodes", "app"),
    "attest": ("warden.cli.attest", "app"),
    "probe": ("warden.cli.probe", "app"),
    "alerts": ("warden.cli.alerts", "app"),
    "keys": ("warden.cli.keys", "app"),
    "kms": ("warden.cli.kms", "app"),
    "auth": ("warden.cli.auth", "app"),
    "serve": ("warden.cli.serve", "serve_command"),
    "workspace": ("warden.cli.workspace", "app"),
    "devnet": ("warden.cli.devnet", "app"),
}


class LazyGroup(WardenGroup):
    """Lists every command, imports a command's module only when it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = COMMANDS[cmd_name]
        target: Any = getattr(importlib.import_module(module_name), attribute)
        if isinstance(target, typer.Typer):
            command: Command = typer.main.get_group(target)  # a group even when it has one command
        else:  # a plain function: the whole command
            single = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
            single.command(cmd_name, context_settings={"help_option_names": ["-h", "--help"]})(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = new_app(
    "warden",
    "Which code may run on which machines: the on-chain allowlists of dstack apps, checked and fixed "
    "from the chain itself.",
)
app.info.cls = LazyGroup
app.info.epilog = (
    "Exit codes: 0 ok, 1 failed or refused, 2 bad input, 3 undecided (a check could not run), "
    "4 changes pending; see docs/exit-codes.md."
)


def _print_version(asked: bool) -> None:
    if asked:
        stdout.print(f"warden {__version__}", markup=False)
        raise typer.Exit()


VersionFlag = Annotated[
    bool,
    typer.Option("--version", "-V", is_eager=True, callback=_print_version, help="Print warden's version and exit."),
]


@app.callback()
def warden(version: VersionFlag = False) -> None:  # makes `warden` a group of commands; its help is the app's
    pass


@app.command("version")
def version(json_out: JsonOption = False) -> None:
    """Print warden's version (`{"version"}` under --json).

    Example: warden version --json
    """
    emit(json_out, {"version": __version__}, lines(f"warden {__version__}"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
