"""The devnet collateral: signed over its exact bytes by the PKI's TCB key, read back by dcap-qvl, signed once."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import dcap_qvl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from warden.tee.collateral import collateral, collateral_json, qe_identity_json, tcb_info_json
from warden.tee.pki import DEVNET_FMSPC, MockIntelPki


@pytest.fixture(scope="module")
def pki() -> MockIntelPki:
    return MockIntelPki.create()


def _check_raw_signature(cert: x509.Certificate, data: bytes, signature: bytes) -> None:
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public.verify(der, data, ec.ECDSA(hashes.SHA256()))  # raises if the bytes were not what was signed


def test_collateral_is_signed_over_its_exact_bytes(pki: MockIntelPki) -> None:
    data: dict[str, Any] = json.loads(collateral_json(pki))
    tcb_info, qe_identity = data["tcb_info"], data["qe_identity"]
    _check_raw_signature(pki.tcb_cert, tcb_info.encode(), bytes.fromhex(data["tcb_info_signature"]))
    _check_raw_signature(pki.tcb_cert, qe_identity.encode(), bytes.fromhex(data["qe_identity_signature"]))
    info = json.loads(tcb_info)
    assert (info["id"], info["version"], info["fmspc"]) == ("TDX", 3, DEVNET_FMSPC.hex().upper())
    issue = dt.datetime.fromisoformat(info["issueDate"].replace("Z", "+00:00"))
    next_update = dt.datetime.fromisoformat(info["nextUpdate"].replace("Z", "+00:00"))
    assert issue == pki.created
    assert next_update - issue > dt.timedelta(days=9 * 365)
    assert json.loads(qe_identity)["id"] == "TD_QE"


def test_collateral_round_trips_through_dcap_qvl(pki: MockIntelPki) -> None:
    text = collateral_json(pki)
    parsed = dcap_qvl.QuoteCollateralV3.from_json(text)
    assert parsed.to_json() == text
    assert parsed.tcb_info == tcb_info_json(pki)
    assert parsed.qe_identity == qe_identity_json(pki)
    assert collateral(pki).root_ca_crl == parsed.root_ca_crl


def test_collateral_is_signed_once_per_pki_and_fmspc(pki: MockIntelPki) -> None:
    # ECDSA signatures are randomised: equal text means the cached signing was reused, not redone
    assert collateral_json(pki) == collateral_json(pki)
    other_fmspc = bytes.fromhex("00906ed50000")
    assert json.loads(tcb_info_json(pki, other_fmspc))["fmspc"] == "00906ED50000"
    assert collateral_json(pki, other_fmspc) != collateral_json(pki)
    assert collateral_json(MockIntelPki.create(pki.created)) != collateral_json(pki)
