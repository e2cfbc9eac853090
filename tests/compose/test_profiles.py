"""Producer serialisations: the SDK vector, the exact layouts, and three different hashes for one manifest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from dstack_sdk import get_compose_hash

from warden.compose.hashing import compose_hash
from warden.compose.profiles import PROFILES, serialise
from warden.errors import BadInput

SDK_VECTOR = "1120e42a7b5f2ca50128696ea414771441b4fa92373427108a7173181cc80b55"

MANIFEST: dict[str, Any] = {
    "manifest_version": 2,
    "name": "démo",
    "runner": "docker-compose",
    "docker_compose_file": "services: {}\n",
    "kms_enabled": True,
    "allowed_envs": [],
    "port_policy": {"restrict_mode": False, "ports": [{"port": 80, "pp": True}]},
}


def test_sdk_profile_reproduces_the_reference_vector() -> None:
    raw = serialise({"runner": "docker-compose"}, "dstack-sdk")
    assert raw == b'{"runner":"docker-compose"}'
    assert compose_hash(raw).hex() == SDK_VECTOR


def test_sdk_profile_agrees_with_the_dstack_sdk() -> None:
    assert compose_hash(serialise(MANIFEST, "dstack-sdk")).hex() == get_compose_hash(dict(MANIFEST))


def test_sdk_profile_sorts_recursively_and_drops_top_level_nulls() -> None:
    raw = serialise({"b": {"y": 1, "x": [{"d": 1, "c": 2}]}, "a": None}, "dstack-sdk")
    assert raw == b'{"b":{"x":[{"c":2,"d":1}],"y":1}}'


def test_vmm_profile_is_indent_4_in_insertion_order() -> None:
    raw = serialise({"name": "é", "allowed_envs": [], "a": {}}, "dstack-vmm")
    assert raw == '{\n    "name": "é",\n    "allowed_envs": [],\n    "a": {}\n}'.encode()


def test_phala_profile_sorts_top_level_only_without_space_after_colon() -> None:
    raw = serialise({"name": "x", "b": {"z": 1, "y": 2}, "allowed_envs": ["K"]}, "phala-cloud")
    expected = (
        '{\n    "allowed_envs":[\n        "K"\n    ],\n'
        '    "b":{\n        "z":1,\n        "y":2\n    },\n'
        '    "name":"x"\n}'
    )
    assert raw == expected.encode()
    assert raw == json.dumps(dict(sorted({"name": "x", "b": {"z": 1, "y": 2}, "allowed_envs": ["K"]}.items())),
                             indent=4, separators=(",", ":")).encode()  # fmt: skip


def test_three_profiles_give_three_hashes_for_one_manifest() -> None:
    hashes = {compose_hash(serialise(MANIFEST, name)) for name in PROFILES}
    assert len(hashes) == 3
    for name in PROFILES:
        assert "é".encode() in serialise(MANIFEST, name)  # ensure_ascii=False everywhere


def test_unknown_profile_and_unserialisable_values_are_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown profile 'yaml'"):
        serialise(MANIFEST, "yaml")
    with pytest.raises(BadInput, match="cannot serialise"):
        serialise({"x": float("nan")}, "dstack-vmm")


def test_re_serialising_a_deployed_manifest_changes_its_hash() -> None:
    deployed = serialise(MANIFEST, "dstack-vmm")
    # the pitfall: parse and dump with Python's defaults (ASCII escapes, ", " and ": ")
    redumped = json.dumps(json.loads(deployed)).encode()
    assert json.loads(redumped) == json.loads(deployed)
    assert compose_hash(redumped) != compose_hash(deployed)
    assert compose_hash(deployed) == hashlib.sha256(deployed).digest()
