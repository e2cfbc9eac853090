"""What every command shares: its options, error handling, and JSON or human output.

Kept free of the chain and HTTP libraries, so commands that need neither start fast."""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from warden.errors import BadInput, WardenError


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
AppArgument = Annotated[
    str,
    typer.Argument(
        metavar="APP",
        help="DstackApp address (0x…, app_…, any case); with WARDEN_API_URL also an app name or a CVM's "
        "name, UUID or instance id.",
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


class WardenGroup(TyperGroup):
    """Turns every WardenError into `error: …` on stderr with its exit code, never a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WardenError as exc:
            stderr.print(f"error: {exc}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            if type(exc).__module__.startswith("typer."):
                raise  # usage errors, Exit and Abort are the framework's own control flow
            if os.environ.get("WARDEN_DEBUG"):
                traceback.print_exc()
            stderr.print(
                f"error: unexpected failure: {type(exc).__name__}: {exc} (set WARDEN_DEBUG=1 for details)",
                markup=False,
            )
            raise typer.Exit(1) from None


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
        table = Table(*columns)
        for row in listed:
            table.add_row(*row)
        stdout.print(table)

    return human


def emit(json_mode: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    if json_mode:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human()
