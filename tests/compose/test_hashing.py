"""compose_hash is sha256 of the exact bytes; app_id its first 20 bytes; sub-hashes of the embedded texts."""

from __future__ import annotations

import hashlib

import pytest

from warden.compose.hashing import app_id_of, compose_hash, sub_hashes
from warden.compose.manifest import load_manifest
from warden.errors import BadInput

# written by hand, byte for byte: compact, unsorted, no trailing newline (like an old teepod manifest)
OWN_VECTOR = (
    b'{"manifest_version":2,"name":"vector","runner":"docker-compose",'
    b'"docker_compose_file":"services:\\n  web:\\n    image: nginx\\n","kms_enabled":true}'
)


def test_compose_hash_is_sha256_of_the_exact_bytes() -> None:
    assert compose_hash(OWN_VECTOR) == hashlib.sha256(OWN_VECTOR).digest()
    assert compose_hash(OWN_VECTOR + b"\n") != compose_hash(OWN_VECTOR)


def test_app_id_is_the_first_20_bytes() -> None:
    digest = compose_hash(OWN_VECTOR)
    assert app_id_of(digest) == digest[:20] and len(app_id_of(digest)) == 20
    with pytest.raises(BadInput, match="32 bytes"):
        app_id_of(b"\x00" * 20)


def test_sub_hashes_are_sha256_of_the_utf8_texts() -> None:
    manifest = load_manifest(OWN_VECTOR)
    subs = sub_hashes(manifest)
    assert subs["docker_compose_file"] == hashlib.sha256(b"services:\n  web:\n    image: nginx\n").digest()
    assert subs["pre_launch_script"] is None
    assert sub_hashes({"pre_launch_script": "écho"})["pre_launch_script"] == hashlib.sha256("écho".encode()).digest()
