"""load_manifest: refuses what dstack cannot read, warns about surprising bytes, never changes them."""

from __future__ import annotations

import hashlib

import pytest

from warden.compose.hashing import compose_hash
from warden.compose.manifest import FIELDS, load_manifest
from warden.compose.profiles import serialise
from warden.errors import BadInput

BASE = b'{"manifest_version":2,"name":"a","runner":"docker-compose"}'


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b'{"manifest_version":2,', "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "not an object"),
        (b'"text"', "not an object"),
        (b'{"manifest_version":4,"name":"a","runner":"bash"}', "numeric manifest_version 4"),
        (b'{"manifest_version":"7","name":"a","runner":"bash"}', 'unknown manifest_version "7"'),
        (b'{"manifest_version":"03","name":"a","runner":"bash"}', "unknown manifest_version"),
        (b'{"manifest_version":2.0,"name":"a","runner":"bash"}', "unknown manifest_version"),
        (b'{"manifest_version":true,"name":"a","runner":"bash"}', "unknown manifest_version"),
        (BASE + b'{"x":1}', "trailing bytes after the JSON value at byte 59"),
        (BASE + b"\nxyz", "trailing bytes"),
        (b'{"manifest_version":2,"swap_size":NaN}', "NaN"),
        (b'{"name":"\xff"}', "not UTF-8"),
    ],
)
def test_bad_input(raw: bytes, phrase: str) -> None:
    with pytest.raises(BadInput, match=phrase):
        load_manifest(raw)


def test_known_versions_are_accepted() -> None:
    for version in (b"1", b"2", b'"1"', b'"2"', b'"3"'):
        manifest = load_manifest(b'{"manifest_version":' + version + b',"name":"a","runner":"bash"}')
        assert manifest.manifest_version == int(version.strip(b'"'))


def test_a_clean_producer_file_has_no_warnings_and_a_known_producer() -> None:
    fields = {"manifest_version": 2, "name": "a", "runner": "docker-compose", "kms_enabled": True}
    for profile in ("dstack-vmm", "phala-cloud", "dstack-sdk"):
        manifest = load_manifest(serialise(fields, profile))
        assert manifest.warnings == () and manifest.producer == profile
    assert load_manifest(BASE).producer == "dstack-sdk"  # compact and already sorted
    unsorted = load_manifest(b'{"name":"a","manifest_version":2,"runner":"bash"}')
    assert unsorted.producer is None and unsorted.warnings == ()  # compact, hand-written: no complaint


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"\xef\xbb\xbf" + BASE, "BOM"),
        (serialise({"manifest_version": 2, "name": "a"}, "dstack-vmm").replace(b"\n", b"\r\n"), "CRLF"),
        (BASE + b"\n", "ends with a newline"),
        (BASE + b"  ", "trailing whitespace"),
        (b'{\n  "manifest_version": 2,\n  "name": "a",\n  "runner": "bash"\n}', "re-serialised by an editor"),
        (b'{"name":"a","runner":"bash"}', "no manifest_version"),
        (BASE[:-1] + b',"public_logs":"yes"}', "public_logs should be bool"),
        (BASE[:-1] + b',"custom":1}', "unknown field 'custom'"),
        (BASE[:-1] + b',"name":"b"}', "duplicate key 'name'"),
    ],
)
def test_surprising_bytes_warn_but_hash_exactly(raw: bytes, phrase: str) -> None:
    manifest = load_manifest(raw)
    assert any(phrase in warning for warning in manifest.warnings), manifest.warnings
    assert manifest.raw == raw
    assert compose_hash(manifest.raw) == hashlib.sha256(raw).digest()


def test_unknown_fields_round_trip_in_order() -> None:
    raw = b'{"manifest_version":2,"zeta":{"k":[1]},"name":"a","runner":"bash","alpha":null}'
    manifest = load_manifest(raw)
    assert list(manifest.fields) == ["manifest_version", "zeta", "name", "runner", "alpha"]
    assert manifest.unknown == ("zeta", "alpha")
    assert serialise(manifest.fields, "dstack-vmm").count(b'"zeta"') == 1


def test_defaults_and_legacy_aliases() -> None:
    bare = load_manifest(BASE)
    assert bare.public_tcbinfo is True and bare.secure_time is True and bare.public_logs is False
    assert bare.key_provider == "none" and bare.key_provider_id == "" and bare.allowed_envs == []
    assert bare.storage_fs == "zfs" and bare.swap_size == 0 and bare.gateway_enabled is False
    assert load_manifest(BASE[:-1] + b',"tproxy_enabled":true}').gateway_enabled is True
    assert load_manifest(BASE[:-1] + b',"features":["tproxy-net"]}').gateway_enabled is True
    assert load_manifest(BASE[:-1] + b',"features":["kms"]}').key_provider == "none"  # features alone: no KMS
    assert load_manifest(BASE[:-1] + b',"kms_enabled":true}').key_provider == "kms"
    assert load_manifest(BASE[:-1] + b',"local_key_provider_enabled":true}').key_provider == "local"
    assert load_manifest(BASE[:-1] + b',"kms_enabled":true,"key_provider":"tpm"}').key_provider == "tpm"
    assert load_manifest(BASE[:-1] + b',"init_script":"echo"}').init_scripts == ["echo"]
    assert FIELDS["tproxy_enabled"].alias_of == "gateway_enabled"


def test_disagreeing_alias_warns() -> None:
    manifest = load_manifest(BASE[:-1] + b',"gateway_enabled":false,"tproxy_enabled":true}')
    assert manifest.gateway_enabled is True
    assert any("disagree" in warning for warning in manifest.warnings)
