"""The devnet's collateral: the TDX TCB info, the TD quoting-enclave identity and the CRLs, signed by the
devnet PKI's TCB signing key, in the form dcap-qvl verifies quotes against (`QuoteCollateralV3`).

The TCB info has one UpToDate and one OutOfDate platform level (`TCB_SVNS` in warden.tee.pki), so a node
issued with the older SVNs verifies as OutOfDate with `OUT_OF_DATE_ADVISORY`, as after a missed microcode
update. Everything is valid from the PKI's creation for ten years and signed once per PKI and FMSPC.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from typing import Any

import dcap_qvl
from cryptography.hazmat.primitives import serialization

from warden.tee.pki import (
    DEVNET_FMSPC,
    DEVNET_PCE_ID,
    OUT_OF_DATE_CPU_SVN,
    OUT_OF_DATE_PCE_SVN,
    QE_ISV_PROD_ID,
    QE_ISV_SVN,
    QE_MISCSELECT,
    QE_MRSIGNER,
    TDX_MODULE_MRSIGNER,
    TEE_TCB_SVN,
    UP_TO_DATE_CPU_SVN,
    UP_TO_DATE_PCE_SVN,
    MockIntelPki,
    iso_time,
    raw_signature,
)

OUT_OF_DATE_ADVISORY = "DEVNET-SA-00001"
TDX_MODULE_COMPONENTS = (5, 0, 2) + (0,) * 13
TCB_EVALUATION_DATA_NUMBER = 17
COLLATERAL_LIFETIME = dt.timedelta(days=3653)

# signing is the slow part and a PKI never changes: one collateral per (PKI, FMSPC), dropped with the PKI
_signed: weakref.WeakKeyDictionary[MockIntelPki, dict[bytes, str]] = weakref.WeakKeyDictionary()


def tcb_info_json(pki: MockIntelPki, fmspc: bytes = DEVNET_FMSPC) -> str:
    """TDX TCB info (version 3) for `fmspc`: one UpToDate and one OutOfDate platform level."""
    issue, next_update = iso_time(pki.created), iso_time(pki.created + COLLATERAL_LIFETIME)

    def level(cpu_svn: bytes, pce_svn: int, status: str, advisories: list[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "tcb": {
                "sgxtcbcomponents": [{"svn": svn} for svn in cpu_svn],
                "pcesvn": pce_svn,
                "tdxtcbcomponents": [{"svn": svn} for svn in TDX_MODULE_COMPONENTS],
            },
            "tcbDate": issue,
            "tcbStatus": status,
        }
        if advisories:
            entry["advisoryIDs"] = advisories
        return entry

    module = {
        "mrsigner": TDX_MODULE_MRSIGNER.hex().upper(),
        "attributes": "0000000000000000",
        "attributesMask": "FFFFFFFFFFFFFFFF",
    }
    body = {
        "id": "TDX",
        "version": 3,
        "issueDate": issue,
        "nextUpdate": next_update,
        "fmspc": fmspc.hex().upper(),
        "pceId": DEVNET_PCE_ID.hex().upper(),
        "tcbType": 0,
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "tdxModule": module,
        "tdxModuleIdentities": [
            {
                "id": f"TDX_{TEE_TCB_SVN[1]:02X}",
                **module,
                "tcbLevels": [{"tcb": {"isvsvn": TEE_TCB_SVN[0]}, "tcbDate": issue, "tcbStatus": "UpToDate"}],
            }
        ],
        "tcbLevels": [
            level(UP_TO_DATE_CPU_SVN, UP_TO_DATE_PCE_SVN, "UpToDate", []),
            level(OUT_OF_DATE_CPU_SVN, OUT_OF_DATE_PCE_SVN, "OutOfDate", [OUT_OF_DATE_ADVISORY]),
        ],
    }
    return json.dumps(body, separators=(",", ":"))


def qe_identity_json(pki: MockIntelPki) -> str:
    """TD quoting-enclave identity (version 2) matching the QE report in the devnet's quotes."""
    issue = iso_time(pki.created)
    body = {
        "id": "TD_QE",
        "version": 2,
        "issueDate": issue,
        "nextUpdate": iso_time(pki.created + COLLATERAL_LIFETIME),
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "miscselect": QE_MISCSELECT.to_bytes(4, "little").hex().upper(),
        "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000",
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": QE_MRSIGNER.hex().upper(),
        "isvprodid": QE_ISV_PROD_ID,
        "tcbLevels": [{"tcb": {"isvsvn": QE_ISV_SVN}, "tcbDate": issue, "tcbStatus": "UpToDate"}],
    }
    return json.dumps(body, separators=(",", ":"))


def collateral(pki: MockIntelPki, fmspc: bytes = DEVNET_FMSPC) -> Any:
    """`dcap_qvl.QuoteCollateralV3` for quotes from platforms with `fmspc`, valid from creation for ten years."""
    return dcap_qvl.QuoteCollateralV3.from_json(collateral_json(pki, fmspc))


def collateral_json(pki: MockIntelPki, fmspc: bytes = DEVNET_FMSPC) -> str:
    """The collateral in `QuoteCollateralV3.to_json` form (CRLs and signatures hex); signed once, then cached."""
    signed = _signed.setdefault(pki, {})
    cached = signed.get(fmspc)
    if cached is not None:
        return cached
    tcb_info, qe_identity = tcb_info_json(pki, fmspc), qe_identity_json(pki)
    tcb_chain = (pki.tcb_signing_pem + pki.root_ca_pem).decode()
    built = dcap_qvl.QuoteCollateralV3(
        (pki.platform_ca_pem + pki.root_ca_pem).decode(),
        pki.root_crl.public_bytes(serialization.Encoding.DER),
        pki.pck_crl.public_bytes(serialization.Encoding.DER),
        tcb_chain,
        tcb_info,
        raw_signature(pki.tcb_key, tcb_info.encode()),
        tcb_chain,
        qe_identity,
        raw_signature(pki.tcb_key, qe_identity.encode()),
    )
    text = str(built.to_json())
    signed[fmspc] = text
    return text
