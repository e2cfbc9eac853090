"""`warden devnet …`: the whole stack on this machine (anvil + contracts; later: KMS, nodes, dashboard)."""

from __future__ import annotations

import shlex
import signal
import time
from typing import Annotated

import typer

from warden.cli.common import JsonOption, emit, new_app, note, stdout
from warden.devnet.anvil import DEV_PRIVATE_KEY
from warden.devnet.stack import DEFAULT_PORT, Started, down, is_running, require_state, up
from warden.devnet.state import DevnetState, state_file

app = new_app("devnet", "A local chain with DstackKms and a demo app, for trying every runbook on one machine.")


def _print_started(started: Started) -> None:
    state = started.state
    stdout.print(f"devnet up: chain {state.chain_id} at {state.rpc_url}")
    stdout.print(f"  DstackKms          {state.kms}")
    stdout.print(f"  app implementation {state.app_implementation}")
    for name, address in state.apps.items():
        stdout.print(f"  app {name:<14} {address}")
    stdout.print(f"  state              {state_file()}")
    stdout.print("next commands to try:")
    stdout.print('  eval "$(warden devnet env)"')
    demo = next(iter(state.apps.values()), None)
    if demo:
        stdout.print(f"  warden app info {demo}")
    stdout.print("  warden app deploy --json")
    stdout.print("  warden kms info")


@app.command("up")
def devnet_up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Leave it running in the background.")] = False,
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="RPC port (a free one is used when it is busy).")
    ] = DEFAULT_PORT,
    block_time: Annotated[
        float | None,
        typer.Option(
            "--block-time",
            metavar="SECONDS",
            help="Seconds per block (default: mine each transaction at once).",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Start anvil, deploy DstackKms + the demo DstackApp on first start, and stay up until Ctrl-C.

    The chain state is saved on stop, so the next `up` has the same contracts at the same addresses.

    Example: warden devnet up --detach && eval "$(warden devnet env)"
    """
    began = time.monotonic()
    started = up(port=port, block_time=block_time, detach=detach, note=note)
    if started.anvil is None:
        note("the devnet is already running")
    else:
        note(
            f"ready in {time.monotonic() - began:.1f}s" + (" (contracts restored)" if started.reused_contracts else "")
        )
    emit(json_out, started.state.status_json(True), lambda: _print_started(started))
    if detach or started.anvil is None:
        if started.anvil is not None:
            note("running in the background; stop it with `warden devnet down`")
        return
    note("press Ctrl-C to stop")
    process = started.anvil.process
    assert process is not None
    # SIGTERM from `warden devnet down` or a supervisor stops us like Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        process.wait()
        note(f"anvil exited with code {process.returncode}; see {started.anvil.log_path}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        started.anvil.stop()
        note("devnet stopped; its state is kept for the next `warden devnet up`")


@app.command("down")
def devnet_down() -> None:
    """Stop the devnet started here (its chain state is kept).

    Example: warden devnet down
    """
    if down():
        note("devnet stopped")
    else:
        note("no devnet was running")


@app.command("status")
def devnet_status(json_out: JsonOption = False) -> None:
    """Where everything is, and whether it is running (exit 1 when it is not).

    Example: warden devnet status --json
    """
    state = require_state()
    running = is_running(state)
    data = state.status_json(running)

    def human() -> None:
        stdout.print(f"devnet {'running' if running else 'stopped'}: chain {state.chain_id} at {state.rpc_url}")
        stdout.print(f"  DstackKms {state.kms}")
        for name, address in state.apps.items():
            stdout.print(f"  app {name} {address}")

    emit(json_out, data, human)
    if not running:
        raise typer.Exit(1)


def env_lines(state: DevnetState) -> list[str]:
    values = {
        "ETH_RPC_URL": state.rpc_url,
        "PRIVATE_KEY": DEV_PRIVATE_KEY,  # anvil's public test key, not a secret
        "WARDEN_KMS": state.kms,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


@app.command("env")
def devnet_env() -> None:
    """Print `export …` lines so every other command talks to the devnet.

    Example: eval "$(warden devnet env)"
    """
    for line in env_lines(require_state()):
        stdout.print(line, markup=False, soft_wrap=True)
