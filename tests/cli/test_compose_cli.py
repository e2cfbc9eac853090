"""`warden compose hash|explain|matrix`: JSON shapes, exact-byte hashing, exit codes and clean errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.cli import assert_clean_error, warden
from warden.compose.platforms import SHIPPED, base_manifest, platforms_document
from warden.compose.profiles import serialise

YAML = "services:\n  demo:\n    image: node:22\n"
MANIFEST = b'{"manifest_version":2,"name":"demo","runner":"docker-compose","docker_compose_file":"x: 1\\n"}'
HASH_KEYS = {"compose_hash", "app_id", "docker_compose_hash", "pre_launch_script_hash", "bytes", "warnings"}


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_hash_json_shape_and_exact_bytes(tmp_path: Path) -> None:
    data = warden("compose", "hash", write(tmp_path, "a.json", MANIFEST), "--json").json()
    assert set(data) == HASH_KEYS
    digest = hashlib.sha256(MANIFEST).hexdigest()
    assert data["compose_hash"] == "0x" + digest and data["app_id"] == "0x" + digest[:40]
    assert data["docker_compose_hash"] == "0x" + hashlib.sha256(b"x: 1\n").hexdigest()
    assert data["pre_launch_script_hash"] is None and data["bytes"] == len(MANIFEST) and data["warnings"] == []


def test_hash_of_a_crlf_bom_file_warns_and_hashes_the_exact_bytes(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + MANIFEST.replace(b",", b",\r\n") + b"\r\n"
    run = warden("compose", "hash", write(tmp_path, "a.json", raw), "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["compose_hash"] == "0x" + hashlib.sha256(raw).hexdigest()
    text = " ".join(data["warnings"])
    assert "BOM" in text and "CRLF" in text and "newline" in text


def test_hash_with_profile_hashes_that_producers_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", MANIFEST)
    fields = json.loads(MANIFEST)
    for profile in ("dstack-sdk", "dstack-vmm", "phala-cloud"):
        run = warden("compose", "hash", path, "--profile", profile, "--json")
        assert run.exit_code == 0, run.stderr
        expected = serialise(fields, profile)
        assert run.json()["compose_hash"] == "0x" + hashlib.sha256(expected).hexdigest()
        assert run.json()["bytes"] == len(expected)
    human = warden("compose", "hash", path)
    assert "0x" + hashlib.sha256(MANIFEST).hexdigest() in human.stdout


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"{nope", "not valid JSON"),
        (b"[]", "not an object"),
        (b'{"manifest_version":9}', "manifest_version"),
        (MANIFEST + b"{}", "trailing bytes"),
    ],
)
def test_hash_bad_manifests_exit_2(tmp_path: Path, raw: bytes, phrase: str) -> None:
    assert_clean_error(warden("compose", "hash", write(tmp_path, "bad.json", raw), "--json"), 2, phrase)


def test_hash_missing_file_and_unknown_profile_exit_2(tmp_path: Path) -> None:
    assert_clean_error(warden("compose", "hash", str(tmp_path / "none.json")), 2, "does not exist")
    path = write(tmp_path, "a.json", MANIFEST)
    assert_clean_error(warden("compose", "hash", path, "--profile", "yaml"), 2, "unknown profile")


def test_explain_json_and_table(tmp_path: Path) -> None:
    base = base_manifest(YAML, "shared-key-demo-2")
    cli, _, selfhost = (write(tmp_path, f"{p.name}.json", p.write(base)) for p in SHIPPED)
    run = warden("compose", "explain", cli, selfhost, "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["parts"] == {"docker_compose_file": "identical", "pre_launch_script": "absent in B"}
    assert set(data["differing"]) == {
        "allowed_envs", "features", "gateway_enabled", "pre_launch_script", "public_tcbinfo", "storage_fs",
        "tproxy_enabled", "key_provider_id",
    }  # fmt: skip
    rows = {row["field"]: row for row in data["rows"]}
    assert set(rows["features"]) == {"field", "a", "b", "in_a", "in_b", "changes_hash", "same_effect"}
    assert rows["features"]["in_b"] is False and rows["features"]["changes_hash"] is True
    assert set(rows["pre_launch_script"]["a"]) == {"chars", "sha256"}
    assert data["compose_hash_a"] != data["compose_hash_b"] and data["same_hash"] is False
    table = warden("compose", "explain", cli, selfhost)
    assert table.exit_code == 0 and "(absent)" in table.stdout and "pre_launch_script    absent in B" in table.stdout


def test_explain_bad_input_exit_2(tmp_path: Path) -> None:
    good = write(tmp_path, "a.json", MANIFEST)
    assert_clean_error(warden("compose", "explain", good, write(tmp_path, "b.json", b"1")), 2, "not an object")


def test_matrix_default_platforms(tmp_path: Path) -> None:
    run = warden("compose", "matrix", write(tmp_path, "dc.yaml", YAML.encode()), "--name", "app", "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert [row["platform"] for row in data["rows"]] == ["phala-cli", "phala-api", "selfhost-vmm"]
    assert len({row["compose_hash"] for row in data["rows"]}) == 3 == data["distinct_compose_hashes"]
    assert {row["docker_compose_hash"] for row in data["rows"]} == {"0x" + hashlib.sha256(YAML.encode()).hexdigest()}
    for row in data["rows"]:
        assert {"platform", "compose_hash", "app_id", "docker_compose_hash"} <= set(row)
        assert row["app_id"] == row["compose_hash"][:42]
    assert "placeholder" in run.stderr


def test_matrix_with_a_platforms_file(tmp_path: Path) -> None:
    dc = write(tmp_path, "dc.yaml", YAML.encode())
    mine = [*platforms_document()[2:], {"name": "sdk", "profile": "dstack-sdk"}]
    file = write(tmp_path, "platforms.json", json.dumps(mine).encode())
    data = warden("compose", "matrix", dc, "--name", "app", "--platforms", file, "--json").json()
    assert [row["platform"] for row in data["rows"]] == ["selfhost-vmm", "sdk"]
    human = warden("compose", "matrix", dc, "--name", "app", "--platforms", file)
    assert human.exit_code == 0 and "selfhost-vmm" in human.stdout and "placeholder" not in human.stderr


def test_matrix_bad_input_exit_2(tmp_path: Path) -> None:
    dc = write(tmp_path, "dc.yaml", YAML.encode())
    bad = write(tmp_path, "p.json", b'[{"name":"x","profile":"nope"}]')
    assert_clean_error(warden("compose", "matrix", dc, "--name", "a", "--platforms", bad), 2, "profile must be")
    binary = write(tmp_path, "bin.yaml", b"\xff\xfe")
    assert_clean_error(warden("compose", "matrix", binary, "--name", "a"), 2, "not UTF-8")


@pytest.mark.parametrize("command", ["hash", "explain", "matrix"])
def test_help_has_an_example(command: str) -> None:
    run = warden("compose", command, "--help")
    assert run.exit_code == 0 and "Example: warden compose " + command in run.stdout
