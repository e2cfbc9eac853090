"""`warden compose …`: compose hashes of app-compose.json files, why two differ, and one per platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from warden.cli.common import JsonOption, emit, flag, new_app, note, stdout
from warden.compose.diff import Explanation, explain, json_value, show
from warden.compose.hashing import app_id_of, compose_hash, sub_hashes
from warden.compose.manifest import load_manifest
from warden.compose.platforms import SHIPPED, MatrixRow, matrix, parse_platforms
from warden.compose.profiles import PROFILES, profile_named, serialise
from warden.errors import BadInput

app = new_app("compose", "app-compose.json: compose hashes, why two differ, and what each platform would deploy.")
app.info.epilog = "\b\nExample: warden compose hash app-compose.json"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise BadInput(f"{what} file {path} is a directory") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} file {path}: {exc.strerror}") from None


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


ProfileOption = Annotated[
    str | None,
    flag(
        "--profile",
        f"Hash what this producer would write from the same manifest ({', '.join(PROFILES)}).",
        metavar="NAME",
    ),
]


@app.command("hash")
def hash_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="app-compose.json exactly as deployed.")],
    profile: ProfileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Compose hash (sha256 of the exact bytes), app_id, and the sha256 of docker_compose_file / pre_launch_script.

    The file is never re-serialised: a BOM, CRLF or trailing newline change the hash and are reported as warnings.

    \b
    Example: warden compose hash app-compose.json --json
    """
    if profile is not None:
        profile_named(profile)
    manifest = load_manifest(_read(file, "manifest"))
    if profile is not None:
        note(f"hashing the {profile} serialisation of {file}, not the file's own bytes")
        manifest = load_manifest(serialise(manifest.fields, profile))
    digest = compose_hash(manifest.raw)
    subs = sub_hashes(manifest)
    data = {
        "compose_hash": _hex(digest),
        "app_id": _hex(app_id_of(digest)),
        "docker_compose_hash": _hex(subs["docker_compose_file"]),
        "pre_launch_script_hash": _hex(subs["pre_launch_script"]),
        "bytes": len(manifest.raw),
        "warnings": list(manifest.warnings),
    }
    if json_out:
        for warning in manifest.warnings:
            note(f"warning: {warning}")
    emit(json_out, data, lambda: _hash_summary(data, manifest.producer))


def _hash_summary(data: dict[str, Any], producer: str | None) -> None:
    for key in ("compose_hash", "app_id", "docker_compose_hash", "pre_launch_script_hash", "bytes"):
        stdout.print(f"{key:<23} {data[key] if data[key] is not None else '-'}", markup=False)
    stdout.print(f"{'layout':<23} {producer or 'no known producer'}", markup=False)
    for warning in data["warnings"]:
        note(f"warning: {warning}")


@app.command("explain")
def explain_command(
    a: Annotated[Path, typer.Argument(metavar="A", help="First app-compose.json.")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Second app-compose.json.")],
    json_out: JsonOption = False,
) -> None:
    """Why two manifests hash differently: every field side by side, and which sub-hashed part differs.

    \b
    Example: warden compose explain demo-1.json selfhost.json
    """
    result = explain(load_manifest(_read(a, "manifest A")), load_manifest(_read(b, "manifest B")))
    data = {
        "same_hash": result.same_hash,
        "compose_hash_a": _hex(result.compose_hash_a),
        "compose_hash_b": _hex(result.compose_hash_b),
        "sub_hashes_a": {name: _hex(value) for name, value in result.sub_hashes_a.items()},
        "sub_hashes_b": {name: _hex(value) for name, value in result.sub_hashes_b.items()},
        "parts": result.parts(),
        "differing": result.differing,
        "layout_only": result.layout_only,
        "rows": [
            {
                "field": row.field,
                "a": json_value(row.a),
                "b": json_value(row.b),
                "in_a": row.in_a,
                "in_b": row.in_b,
                "changes_hash": row.changes_hash,
                "same_effect": row.same_effect,
            }
            for row in result.rows
        ],
        "summary": result.summary(),
    }
    emit(json_out, data, lambda: _explain_table(result))


def _explain_table(result: Explanation) -> None:
    cells = [(row.field, show(row.a), show(row.b), row) for row in result.rows]
    width_f = max([len("field"), *(len(c[0]) for c in cells)])
    width_a = max([len("A"), *(len(c[1]) for c in cells)])
    width_b = max([len("B"), *(len(c[2]) for c in cells)])
    stdout.print(f"  {'field':<{width_f}}  {'A':<{width_a}}  {'B':<{width_b}}  hash", markup=False)
    for name, cell_a, cell_b, row in cells:
        mark = "*" if row.changes_hash else " "
        verdict = ("differs" + ("" if not row.same_effect else " (same effect)")) if row.changes_hash else "-"
        stdout.print(f"{mark} {name:<{width_f}}  {cell_a:<{width_a}}  {cell_b:<{width_b}}  {verdict}", markup=False)
    stdout.print("", markup=False)
    stdout.print(f"compose_hash A  0x{result.compose_hash_a.hex()}", markup=False)
    stdout.print(f"compose_hash B  0x{result.compose_hash_b.hex()}", markup=False)
    for name, state in result.parts().items():
        stdout.print(f"{name:<20} {state}", markup=False)
    stdout.print(result.summary(), markup=False)


NameOption = Annotated[
    str | None, flag("--name", "App name (platforms may blank it) [default: the file's directory name].", metavar="APP")
]
PlatformsOption = Annotated[
    Path | None,
    flag(
        "--platforms", "Your platforms: JSON list or TOML [[platforms]] of {name, profile, set, drop}.", metavar="FILE"
    ),
]


@app.command("matrix")
def matrix_command(
    docker_compose: Annotated[Path, typer.Argument(metavar="DOCKER_COMPOSE", help="docker-compose.yaml to deploy.")],
    name: NameOption = None,
    platforms_file: PlatformsOption = None,
    json_out: JsonOption = False,
) -> None:
    """One compose hash per platform for the same docker-compose.yaml: each must be whitelisted on-chain.

    Default platforms: phala-cli, phala-api, selfhost-vmm. The Phala ones carry a placeholder pre-launch script,
    so their hashes show the mechanism, not the values a real Phala Cloud deployment gets.

    \b
    Example: warden compose matrix docker-compose.yaml --name my-app --json
    """
    try:
        text = _read(docker_compose, "docker compose").decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"docker compose file {docker_compose} is not UTF-8") from None
    platforms = (
        parse_platforms(_read(platforms_file, "platforms"), f"platforms file {platforms_file}")
        if platforms_file
        else list(SHIPPED)
    )
    # like `docker compose`, whose project name defaults to the directory holding the file
    rows = matrix(text, name if name is not None else docker_compose.resolve().parent.name, platforms)
    if any(row.placeholder for row in rows):
        note("note: rows marked placeholder use a stand-in for Phala Cloud's pre-launch script (not the real hash)")
    data = {
        "rows": [_row_json(row) for row in rows],
        "distinct_compose_hashes": len({row.compose_hash for row in rows}),
    }
    emit(json_out, data, lambda: _matrix_table(rows))


def _row_json(row: MatrixRow) -> dict[str, Any]:
    return {
        "platform": row.platform,
        "profile": row.profile,
        "compose_hash": _hex(row.compose_hash),
        "app_id": _hex(row.app_id),
        "docker_compose_hash": _hex(row.docker_compose_hash),
        "bytes": len(row.manifest),
        "placeholder": row.placeholder,
    }


def _matrix_table(rows: list[MatrixRow]) -> None:
    width = max([len("platform"), *(len(row.platform) for row in rows)])
    stdout.print(f"{'platform':<{width}}  {'compose_hash':<66}  {'app_id':<42}  docker_compose_hash", markup=False)
    for row in rows:
        flag = "  (placeholder)" if row.placeholder else ""
        stdout.print(
            f"{row.platform:<{width}}  {_hex(row.compose_hash)}  {_hex(row.app_id)}  "
            f"{_hex(row.docker_compose_hash) or '-'}{flag}",
            markup=False,
        )
