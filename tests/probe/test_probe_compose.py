"""`warden probe compose`: the probe container as a docker-compose service and as a whole app-compose.json."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.support.cli import Run, assert_clean_error
from warden.cli.probe import app
from warden.compose.manifest import load_manifest


def compose(*args: str) -> Run:
    result = CliRunner().invoke(app, ["compose", *args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def test_the_service_mounts_the_guest_socket_and_reads_its_settings_from_the_environment() -> None:
    run = compose("--image", "ghcr.io/acme/warden:0.1.0")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "services:\n"
        "  warden-probe:\n"
        "    image: ghcr.io/acme/warden:0.1.0\n"
        '    command: ["python", "-m", "warden.probe", "run", "--every", "3600"]\n'
        "    restart: unless-stopped\n"
        "    volumes:\n"
        "      - /var/run/dstack.sock:/var/run/dstack.sock\n"
        "    environment:\n"
        "      - WARDEN_API_URL=${WARDEN_API_URL}\n"
        "      - WARDEN_API_TOKEN=${WARDEN_API_TOKEN}\n"
        "      - WARDEN_NODE=${WARDEN_NODE}\n"
    )


def test_the_app_compose_keeps_the_token_in_the_encrypted_environment() -> None:
    run = compose("--image", "ghcr.io/acme/warden:0.1.0", "--every", "0", "--app-compose")
    assert run.exit_code == 0, run.stderr
    manifest = load_manifest(run.stdout.encode())  # as `> app-compose.json` writes it
    assert manifest.warnings == () and manifest.producer == "dstack-vmm"
    fields = json.loads(run.stdout)
    assert fields["runner"] == "docker-compose" and fields["kms_enabled"] is True
    assert fields["allowed_envs"] == ["WARDEN_API_URL", "WARDEN_API_TOKEN", "WARDEN_NODE"]
    assert '"--every", "0"' in fields["docker_compose_file"] and "restart: on-failure" in fields["docker_compose_file"]


def test_json_holds_the_text() -> None:
    service, whole = compose("--image", "x:1", "--json"), compose("--image", "x:1", "--app-compose", "--json")
    assert service.json() == {"docker_compose": compose("--image", "x:1").stdout}
    assert whole.json() == {"app_compose": compose("--image", "x:1", "--app-compose").stdout}


def test_bad_values_are_refused() -> None:
    assert_clean_error(compose("--image", "two words"), 2, "invalid image 'two words'")
    assert_clean_error(compose("--every", "-1"), 2, "invalid --every -1")
