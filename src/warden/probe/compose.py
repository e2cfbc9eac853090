"""The container that runs the probe inside a dstack CVM: a docker-compose service, and an app-compose.json.

The service mounts the guest agent's socket and reads the control plane's URL, the workspace token and the
node name from the environment; in a dstack app these come from the encrypted environment (`allowed_envs`),
so the token never appears in the manifest and does not change the compose hash.
"""

from __future__ import annotations

import json
from typing import Any

from warden.compose.platforms import base_manifest
from warden.compose.profiles import serialise
from warden.errors import BadInput

GUEST_SOCKET = "/var/run/dstack.sock"
PROBE_ENVS = ("WARDEN_API_URL", "WARDEN_API_TOKEN", "WARDEN_NODE")
DEFAULT_EVERY_SECONDS = 3600


def docker_compose(image: str, *, every_seconds: int = DEFAULT_EVERY_SECONDS) -> str:
    """The docker-compose YAML of the probe service (probing every `every_seconds`; 0: once)."""
    if not image.strip() or any(c.isspace() for c in image.strip()):
        raise BadInput(f"invalid image {image!r}: expected an image reference like ghcr.io/acme/warden:0.1.0")
    if every_seconds < 0:
        raise BadInput(f"invalid --every {every_seconds}: expected 0 (once) or a number of seconds")
    command = ["python", "-m", "warden.probe", "run", "--every", str(every_seconds)]
    environment = "\n".join(f"      - {name}=${{{name}}}" for name in PROBE_ENVS)
    return (
        "services:\n"
        "  warden-probe:\n"
        f"    image: {image.strip()}\n"
        f"    command: {json.dumps(command)}\n"
        f"    restart: {'unless-stopped' if every_seconds else 'on-failure'}\n"
        "    volumes:\n"
        f"      - {GUEST_SOCKET}:{GUEST_SOCKET}\n"
        "    environment:\n"
        f"{environment}\n"
    )


def app_compose(image: str, *, name: str = "warden-probe", every_seconds: int = DEFAULT_EVERY_SECONDS) -> str:
    """A whole app-compose.json (dstack vmm-cli layout) whose only container is the probe."""
    fields: dict[str, Any] = base_manifest(docker_compose(image, every_seconds=every_seconds), name)
    fields |= {"kms_enabled": True, "gateway_enabled": False, "allowed_envs": list(PROBE_ENVS)}
    return serialise(fields, "dstack-vmm").decode()
