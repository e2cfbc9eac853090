"""explain and matrix on the field report's three deployments (demo-1 CLI, demo-2 API, self-hosted)."""

from __future__ import annotations

import hashlib
import json

import pytest

from warden.compose.diff import explain
from warden.compose.manifest import load_manifest
from warden.compose.platforms import (
    PLACEHOLDER_PRE_LAUNCH_SCRIPT,
    SHIPPED,
    Platform,
    base_manifest,
    matrix,
    parse_platforms,
    platforms_document,
)
from warden.errors import BadInput

YAML = "services:\n  demo:\n    image: node:22\n    ports:\n      - 8080:8080\n"
APP = "shared-key-demo-2"


def deployed(platform_name: str) -> bytes:
    platform = next(p for p in SHIPPED if p.name == platform_name)
    return platform.write(base_manifest(YAML, APP))


def test_shipped_platforms_reproduce_the_field_reports_columns() -> None:
    cli = load_manifest(deployed("phala-cli")).fields
    api = load_manifest(deployed("phala-api")).fields
    selfhost = load_manifest(deployed("selfhost-vmm")).fields
    assert cli["name"] == "" and api["name"] == APP and selfhost["name"] == ""
    assert cli["allowed_envs"] == ["DSTACK_AUTHORIZED_KEYS"] and api["allowed_envs"] == selfhost["allowed_envs"] == []
    assert cli["features"] == ["kms", "tproxy-net"] and api["features"] == ["kms"] and "features" not in selfhost
    assert cli["tproxy_enabled"] is True and api["tproxy_enabled"] is False and "tproxy_enabled" not in selfhost
    assert selfhost["gateway_enabled"] is False and selfhost["key_provider_id"] == ""
    assert cli["pre_launch_script"] == PLACEHOLDER_PRE_LAUNCH_SCRIPT and "PLACEHOLDER" in PLACEHOLDER_PRE_LAUNCH_SCRIPT
    for absent in ("pre_launch_script", "storage_fs", "public_tcbinfo"):
        assert absent not in selfhost
    assert load_manifest(deployed("selfhost-vmm")).producer == "dstack-vmm"
    assert load_manifest(deployed("phala-cli")).producer == "phala-cloud"


def test_explain_cli_vs_selfhost_finds_exactly_the_reports_differences() -> None:
    result = explain(load_manifest(deployed("phala-cli")), load_manifest(deployed("selfhost-vmm")))
    assert set(result.differing) == {
        "allowed_envs", "features", "gateway_enabled", "pre_launch_script", "public_tcbinfo", "storage_fs",
        "tproxy_enabled", "key_provider_id",
    }  # fmt: skip
    assert result.parts() == {"docker_compose_file": "identical", "pre_launch_script": "absent in B"}
    assert not result.same_hash and not result.layout_only
    by_field = {row.field: row for row in result.rows}
    assert by_field["public_tcbinfo"].same_effect  # absent = default true: same behaviour, different hash
    assert not by_field["gateway_enabled"].same_effect
    assert not by_field["kms_enabled"].changes_hash


def test_explain_cli_vs_api_matches_the_reports_list() -> None:
    result = explain(load_manifest(deployed("phala-cli")), load_manifest(deployed("phala-api")))
    assert set(result.differing) == {"name", "allowed_envs", "features", "tproxy_enabled"}
    assert result.parts() == {"docker_compose_file": "identical", "pre_launch_script": "identical"}


def test_explain_reports_a_differing_pre_launch_script_and_layout_only_changes() -> None:
    fields = {"manifest_version": 2, "name": "a", "runner": "docker-compose", "docker_compose_file": YAML}
    one = load_manifest(json.dumps({**fields, "pre_launch_script": "echo 1"}).encode())
    two = load_manifest(json.dumps({**fields, "pre_launch_script": "echo 2"}).encode())
    assert explain(one, two).parts() == {"docker_compose_file": "identical", "pre_launch_script": "differs"}
    compact = load_manifest(json.dumps(fields, separators=(",", ":")).encode())
    spaced = load_manifest(json.dumps(fields).encode())
    layout = explain(compact, spaced)
    assert layout.layout_only and layout.differing == [] and "only the layout differs" in layout.summary()
    assert explain(compact, compact).same_hash


def test_matrix_over_shipped_platforms() -> None:
    rows = matrix(YAML, APP)
    assert [row.platform for row in rows] == ["phala-cli", "phala-api", "selfhost-vmm"]
    assert len({row.compose_hash for row in rows}) == 3
    assert {row.docker_compose_hash for row in rows} == {hashlib.sha256(YAML.encode()).digest()}
    for row in rows:
        assert row.compose_hash == hashlib.sha256(row.manifest).digest() and row.app_id == row.compose_hash[:20]
    assert [row.placeholder for row in rows] == [True, True, False]


def test_platform_files_json_and_toml() -> None:
    shipped = parse_platforms(json.dumps(platforms_document()).encode())
    assert shipped == list(SHIPPED)
    toml = b"""
[[platforms]]
name = "mine"
profile = "dstack-sdk"
drop = ["name"]
[platforms.set]
kms_enabled = true
"""
    (mine,) = parse_platforms(toml)
    assert mine == Platform("mine", "dstack-sdk", "", {"kms_enabled": True}, ("name",))
    (row,) = matrix(YAML, APP, [mine])
    assert b'"name"' not in row.manifest and row.manifest.startswith(b'{"docker_compose_file"')


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"[]", "non-empty list"),
        (b'[{"name":"x","profile":"yaml"}]', "profile must be one of"),
        (b'[{"name":"","profile":"dstack-sdk"}]', "name must be"),
        (b'[{"name":"x","profile":"dstack-sdk","inject":{}}]', "unknown key(s) inject"),
        (b'[{"name":"x","profile":"dstack-sdk","drop":"name"}]', "drop must be"),
        (b'[{"name":"x","profile":"dstack-sdk"},{"name":"x","profile":"dstack-vmm"}]', "duplicate platform"),
        (b"[{", "neither valid JSON (Expecting"),
        (b"name = ", "nor valid TOML"),
    ],
)
def test_bad_platform_files(raw: bytes, phrase: str) -> None:
    with pytest.raises(BadInput, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        parse_platforms(raw)
