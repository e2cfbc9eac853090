"""`warden probe …`: prove from inside a dstack CVM which machine it runs on (docs/probe.md).

`run` is what the probe container executes (also as `python -m warden.probe run`); `compose` prints that
container as a docker-compose service, or a whole app-compose.json.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from warden.cli.common import ApiTokenOption, ApiUrlOption, JsonOption, emit, flag, lines, new_app, note
from warden.errors import BadInput, WardenError
from warden.probe.compose import DEFAULT_EVERY_SECONDS, app_compose, docker_compose
from warden.probe.run import run_probe

app = new_app("probe", "Runs inside a dstack CVM: a quote binding a fresh nonce → the control plane records the node.")
app.info.epilog = "\b\nExample: warden probe compose --image ghcr.io/acme/warden:0.1.0 --app-compose"

NodeOption = Annotated[
    str | None,
    flag("--node", "The node this CVM runs on, as the control plane names it.", metavar="NAME", env="WARDEN_NODE"),
]
GuestOption = Annotated[
    str | None,
    flag(
        "--guest",
        "The guest agent: unix socket path or http URL [default: dstack-sdk's, "
        "DSTACK_SIMULATOR_ENDPOINT or /var/run/dstack.sock].",
        metavar="ENDPOINT",
    ),
]
EveryOption = Annotated[
    int,
    flag("--every", "Probe again every SECONDS (a failed round is reported and retried); 0: once.", metavar="SECONDS"),
]
ImageOption = Annotated[str, flag("--image", "The container image holding warden and dstack-sdk.", metavar="IMAGE")]
AppComposeOption = Annotated[bool, flag("--app-compose", "Print a whole app-compose.json instead of the service.")]


def _summary(answer: dict[str, Any]) -> str:
    node, device = answer.get("node"), answer.get("device_id")
    if answer.get("changed") and answer.get("old_device_id"):
        told = f"device id changed from {answer['old_device_id']} to {device}"
    elif answer.get("changed"):
        told = f"device id {device} recorded"
    else:
        told = f"device id {device} unchanged"
    flagged = answer.get("flagged_cvms") or []
    stranded = f"; CVMs its apps no longer allow: {', '.join(flagged)}" if flagged else ""
    return f"node {node}: {told} (PPID {answer.get('ppid')}, TCB {answer.get('tcb_status')}){stranded}"


@app.command("run")
def run_command(
    node: NodeOption = None,
    api_url: ApiUrlOption = None,
    api_token: ApiTokenOption = None,
    guest: GuestOption = None,
    every: EveryOption = 0,
    json_mode: JsonOption = False,
) -> None:
    """Take a nonce, get a quote binding it from the guest agent, and post it; print the recorded identity.

    Example: WARDEN_API_URL=… WARDEN_API_TOKEN=… warden probe run --node prod5
    """
    if every < 0:
        raise BadInput(f"invalid --every {every}: expected 0 (once) or a number of seconds")
    while True:
        try:
            answer = run_probe(api_url, api_token, node, guest)
        except BadInput:
            raise  # a wrong setting does not fix itself
        except WardenError as exc:
            if not every:
                raise
            note(f"error: {exc} (next probe in {every} s)")
        else:
            emit(json_mode, answer, lines(_summary(answer)))
            if not every:
                return
        time.sleep(every)


@app.command("compose")
def compose_command(
    image: ImageOption = "warden:latest",
    every: EveryOption = DEFAULT_EVERY_SECONDS,
    whole: AppComposeOption = False,
    json_mode: JsonOption = False,
) -> None:
    """Print the probe container (guest socket mounted; WARDEN_API_URL, WARDEN_API_TOKEN, WARDEN_NODE from the
    app's encrypted environment) as a docker-compose service, or with --app-compose as an app-compose.json.

    Example: warden probe compose --image ghcr.io/acme/warden:0.1.0 --app-compose > app-compose.json
    """
    text = app_compose(image, every_seconds=every) if whole else docker_compose(image, every_seconds=every)
    # the exact bytes: `> app-compose.json` deploys what dstack-vmm would write (no trailing newline)
    emit(json_mode, {"app_compose" if whole else "docker_compose": text}, lambda: print(text, end=""))


def main() -> None:
    """`python -m warden.probe`: the same commands as `warden probe`."""
    app(prog_name="warden probe")
