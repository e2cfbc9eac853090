"""What every command shares: its options, error handling, and JSON or human output.

Kept free of the chain and HTTP libraries, so commands that need neither start fast."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from warden import errors
from warden.errors import EXIT_BAD_INPUT, BadInput, WardenError


def _console(to_stderr: bool) -> Console:
    console = Console(stderr=to_stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 240  # piped output: never cut a hash or an address in a table
    return console


stderr = _console(True)
stdout = _console(False)


def flag(name: str, help: str, *, metavar: str | None = None, env: str | None = None) -> Any:
    """One option's declaration: its flag, help, value name and (shown in --help) environment variable."""
    return typer.Option(name, metavar=metavar, envvar=env, show_envvar=env is not None, help=help)


RpcUrlOption = Annotated[
    str | None,
    flag(
        "--rpc-url",
        "JSON-RPC endpoint; several comma-separated URLs fail over in order.",
        metavar="URL",
        env="ETH_RPC_URL",
    ),
]
ChainOption = Annotated[
    str | None,
    flag(
        "--chain",
        "base, base-sepolia or ethereum: use that chain's public RPC when no --rpc-url is given.",
        metavar="NAME",
    ),
]
NodesFileOption = Annotated[
    Path | None,
    flag(
        "--nodes-file",
        "Node inventory: JSON/TOML list of {name, device_id, …} or `phala nodes ls --json` output.",
        metavar="FILE",
        env="WARDEN_NODES_FILE",
    ),
]
ChainIdOption = Annotated[
    int | None, flag("--chain-id", "Refuse to run unless the RPC serves this chain id.", metavar="ID")
]
JsonOption = Annotated[bool, flag("--json", "Print exactly one JSON document on stdout.")]
# declared by the option groups that print tables; the table helper reads it from RUN (set once per run from the
# command line, like --json), so no command has to pass it along
WideOption = Annotated[
    bool, flag("--wide", "Print ids, addresses and hashes in full on a narrow terminal (piped output always is).")
]
AppArgument = Annotated[
    str,
    typer.Argument(
        metavar="APP",
        help="DstackApp address (0x…, app_…, any case); else, with WARDEN_API_URL, a CVM's instance id "
        "(0x… too), name or UUID, or an app name (stderr says which it matched).",
    ),
]
PrivateKeyOption = Annotated[
    str | None,
    flag(
        "--private-key",
        "Signing key (prefer the PRIVATE_KEY env var: a key on the command line is visible to others).",
        metavar="HEX",
    ),
]
KeystoreOption = Annotated[
    str | None,
    flag(
        "--keystore",
        "Encrypted keystore (or WARDEN_KEYSTORE); password from WARDEN_KEYSTORE_PASSWORD or a prompt.",
        metavar="FILE",
    ),
]
TimeoutOption = Annotated[
    float, flag("--timeout", "Seconds to wait for receipts before reporting them pending.", metavar="SECONDS")
]
WaitOption = Annotated[
    bool, flag("--wait", "Wait for the receipts and re-read the chain (default: print the tx hashes).")
]
ApiUrlOption = Annotated[
    str | None,
    flag(
        "--api-url",
        "The control plane, e.g. http://127.0.0.1:8080 (`warden devnet env` prints the devnet's).",
        metavar="URL",
        env="WARDEN_API_URL",
    ),
]
ApiTokenOption = Annotated[
    str | None,
    flag(
        "--api-token",
        "The workspace's API token (prefer the env var: a token on the command line is visible to others).",
        metavar="TOKEN",
        env="WARDEN_API_TOKEN",
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    flag(
        "--database-url",
        "Inventory database: sqlite:///FILE or postgresql://USER@HOST/DB [default: "
        "$WARDEN_HOME/warden.db, the devnet's].",
        metavar="URL",
        env="WARDEN_DATABASE_URL",
    ),
]


HostOption = Annotated[str, flag("--host", "Address to listen on.", metavar="HOST")]
PortOption = Annotated[int, flag("--port", "Port to listen on (0: any free port).", metavar="PORT")]
WorkersOption = Annotated[int | None, flag("--workers", "Processes serving requests [default: one per core].",
                                           metavar="N")]  # fmt: skip
RootCaOption = Annotated[
    Path | None,
    flag("--root-ca", "Trust this attestation root (DER or PEM) instead of Intel's (devnet).", metavar="FILE"),
]
CollateralOption = Annotated[
    Path | None, flag("--collateral", "Quote collateral JSON (TCB info, QE identity, CRLs).", metavar="FILE")
]
PCCS_URL_ENV = "WARDEN_PCCS_URL"
PccsUrlOption = Annotated[
    str | None,
    flag(
        "--pccs-url",
        "Fetch quote collateral from this PCCS (the devnet's: `warden devnet status --json` pccs_url), cached "
        "per platform until its nextUpdate.",
        metavar="URL",
        env=PCCS_URL_ENV,
    ),
]


@dataclass
class Invocation:
    """This run of `warden`: whether --json was given (read once from the command line, so no command has to
    pass it to the error handler) and whether a JSON document is already on stdout."""

    json: bool = False
    printed: bool = False
    wide: bool = False  # --wide: tables print ids and hashes in full however narrow the terminal
    explorer: str | None = None  # where this chain's transactions are looked up (set on connecting)


RUN = Invocation()


def error_kind(exc: BaseException) -> str:
    """A failure's stable name for scripts: its class in warden.errors, kebab-cased (`bad-input`, `not-found`)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == errors.__name__:
            return "".join(f"-{c.lower()}" if c.isupper() else c for c in cls.__name__).lstrip("-")
    return "error"


def fail(message: str, kind: str, exit_code: int, *, hint: str | None = None) -> NoReturn:
    """End the run: `error: …` (and a hint) on stderr; under --json also `{"error": …}` on stdout, unless the
    command already printed its one JSON document (its results, whose exit code tells the outcome)."""
    stderr.print(f"error: {message}", markup=False)
    if hint:
        stderr.print(hint, markup=False)
    if RUN.json and not RUN.printed:
        error = {"message": message, "kind": kind, "exit_code": exit_code}
        sys.stdout.write(json.dumps({"error": error}, indent=2) + "\n")
        RUN.printed = True
    raise typer.Exit(exit_code)


def usage_failure(exc: UsageError) -> NoReturn:
    """A command line the parser refused: one `error:` line and where to read the usage, exit 2."""
    hint = f"Try '{exc.ctx.command_path} --help' for help." if exc.ctx is not None else None
    fail(exc.format_message(), "usage", EXIT_BAD_INPUT, hint=hint)


class WardenGroup(TyperGroup):
    """Turns every WardenError into `error: …` on stderr with its exit code, never a traceback; parser errors
    into `error: …` and a usage hint instead of the framework's box."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        options = argv[: argv.index("--")] if "--" in argv else argv  # after `--` only values
        RUN.json, RUN.printed, RUN.wide, RUN.explorer = "--json" in options, False, "--wide" in options, None
        return super().main(argv, *rest, **extra)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise  # a bare group: its help
        except UsageError as exc:
            usage_failure(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WardenError as exc:
            fail(str(exc), error_kind(exc), exc.exit_code)
        except KeyboardInterrupt:
            stderr.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:  # a command's own arguments (the group's were parsed above)
            usage_failure(exc)
        except Exception as exc:
            if type(exc).__module__.startswith("typer."):
                raise  # Exit and Abort are the framework's own control flow
            if os.environ.get("WARDEN_DEBUG"):
                traceback.print_exc()
            fail(f"unexpected failure: {type(exc).__name__}: {exc} (set WARDEN_DEBUG=1 for details)", "unexpected", 1)


def _argument_usage(self: TyperArgument) -> str:
    """An argument as usage lines and help show it: its metavar as written (`APP`, `[DEVICE]...`), else its
    name; never a Python type."""
    if self.metavar is not None:
        return self.metavar
    name = (self.name or "").upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def _option_value(self: TyperOption, ctx: Any) -> str:
    """An option's value as help shows it: its metavar, else its name (`--format FORMAT`, not `<str>`)."""
    return self.metavar or (self.name or "value").upper()


# Typer builds its parameters itself (no class to pass in), so their display is set here, once, for every
# command: `APP` rather than `{APP}` in usage lines and `APP <str>` in help.
TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
TyperArgument._rich_display_name = _argument_usage  # type: ignore[method-assign]
TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
TyperOption.display_type_rich = _option_value  # type: ignore[method-assign]


def new_app(name: str, help: str) -> typer.Typer:
    return typer.Typer(
        name=name,
        help=help,
        cls=WardenGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def read_file(path: Path, what: str) -> bytes:
    """A file the user named; missing or unreadable is bad input naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} file {path}: {exc.strerror}") from None


def read_root_ca(path: Path) -> bytes:
    """--root-ca: DER as given, or the first PEM certificate converted to DER."""
    data = read_file(path, "root CA")
    if b"-----BEGIN CERTIFICATE-----" in data:
        body = data.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END CERTIFICATE-----", 1)[0]
        try:
            return base64.b64decode(b"".join(body.split()), validate=True)
        except ValueError:
            raise BadInput(f"--root-ca {path}: the PEM certificate is not valid base64") from None
    return data


def note(message: str) -> None:
    """A side remark for humans; on stderr so `--json` output stays parseable."""
    stderr.print(message, markup=False)


def lines(*texts: str) -> Callable[[], None]:
    """The human form of a result that is a few sentences: each printed on its own line, as written."""

    def human() -> None:
        for text in texts:
            stdout.print(text, markup=False)

    return human


def rows_table(columns: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> Callable[[], None]:
    """The human form of a listing: a table of `rows` under `columns`, or the sentence `empty` when there is none."""
    listed = [list(row) for row in rows]

    def human() -> None:
        if not listed:
            stdout.print(empty, markup=False)
            return
        stdout.print(fitted_table(columns, listed))

    return human


HEX_VALUE = re.compile(r"(0x)?[0-9a-fA-F]{24,}")  # an id, address or hash: long enough to be worth shortening
TX_COLUMN = "tx"


def shorten(value: str) -> str:
    """An id, address or hash by its ends (`0x1234…cdef`), which is what one compares; other text as it is."""
    if not HEX_VALUE.fullmatch(value):
        return value
    prefix = value[:2] if value[:2].lower() == "0x" else ""
    digits = value[len(prefix) :]
    return f"{prefix}{digits[:4]}…{digits[-4:]}"


def fitted_table(columns: Sequence[str], rows: Iterable[Sequence[str]], **options: Any) -> Table:
    """A table for stdout that fits the terminal: ids, addresses and hashes shortened in the middle when the
    full table is wider than the terminal; in full with --wide, or when stdout is not a terminal (a file, a
    pipe). On a terminal, a `tx` column links each hash to the chain's explorer (when it has one)."""
    listed = [[str(cell) for cell in row] for row in rows]
    table = _table(columns, listed, short=False, options=options)
    unbounded = stdout.options.update_width(100_000)  # a table's measure is otherwise capped at the terminal
    needed = stdout.measure(table, options=unbounded).maximum
    if needed <= stdout.width:
        return table
    if RUN.wide or not stdout.is_terminal:
        table.width = needed  # wider than the terminal (which wraps the lines) or the file: every character stays
        return table
    return _table(columns, listed, short=True, options=options)


def _table(columns: Sequence[str], rows: list[list[str]], *, short: bool, options: dict[str, Any]) -> Table:
    table = Table(*columns, **options)
    link_column = columns.index(TX_COLUMN) if TX_COLUMN in columns and RUN.explorer and stdout.is_terminal else None
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = shorten(value) if short else value
            linked = i == link_column and HEX_VALUE.fullmatch(value)
            cells.append(Text(text, style=Style(link=f"{RUN.explorer}/tx/{value}") if linked else ""))
        table.add_row(*cells)
    return table


def emit(json_mode: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    if json_mode:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        RUN.printed = True
    else:
        human()
