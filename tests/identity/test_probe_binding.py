"""The report_data a `warden probe` quote must carry (docs/probe.md), pinned by a vector."""

from __future__ import annotations

import hashlib

import pytest

from warden.errors import BadInput
from warden.identity.probe_binding import probe_report_data


def test_layout_is_sha512_of_domain_nonce_and_node_name() -> None:
    nonce = bytes(range(32))
    expected = hashlib.sha512(b"warden-probe:v1:" + nonce + b"prod5").digest()
    assert probe_report_data(nonce, "prod5") == expected
    assert expected.hex() == (
        "8ec01484aa9e59eacfa71ac13905bce5390f122dc32919dc33746ef191a294da"
        "ed79986baacfb46f59e4806e515d17dfd9ead3b5dac201b4cb28ff4d2ff21d54"
    )
    assert probe_report_data(nonce, "prod6") != expected


def test_a_nonce_of_another_length_is_bad_input() -> None:
    with pytest.raises(BadInput, match="a probe nonce is 32 bytes, got 31"):
        probe_report_data(bytes(31), "prod5")
