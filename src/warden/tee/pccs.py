"""The devnet's PCCS: the collateral API a Provisioning Certificate Caching Service serves, answered from the
devnet's mock Intel PKI, so `dcap_qvl.get_collateral` fetches devnet collateral exactly as it fetches Intel's.

Served under `/sgx/certification/v4/` and `/tdx/certification/v4/`, the paths dcap-qvl asks:
    GET /sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der   PCK CRL (DER; PEM without `encoding`)
    GET /sgx/certification/v4/rootcacrl                                    root CA CRL, hex-encoded DER (as a PCCS)
    GET /tdx/certification/v4/tcb?fmspc=HEX                                {"tcbInfo": …, "signature": hex}
    GET /tdx/certification/v4/qe/identity                                  {"enclaveIdentity": …, "signature": hex}
Issuer chains travel URL-encoded (PEM) in the `SGX-PCK-CRL-Issuer-Chain`, `TCB-Info-Issuer-Chain` and
`SGX-Enclave-Identity-Issuer-Chain` headers. An FMSPC the devnet has no platform for is 404, as on a PCCS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from warden.tee.collateral import collateral_json
from warden.tee.pki import DEVNET_FMSPC, MockIntelPki

PCK_CRL_ISSUER_CHAIN = "SGX-PCK-CRL-Issuer-Chain"
TCB_INFO_ISSUER_CHAIN = "TCB-Info-Issuer-Chain"
QE_IDENTITY_ISSUER_CHAIN = "SGX-Enclave-Identity-Issuer-Chain"
PCK_CA_TYPES = ("platform", "processor")
_FMSPC = re.compile(r"[0-9a-fA-F]{12}")


def _chain_header(pem: str) -> str:
    # Intel's PCS and a PCCS both percent-encode the PEM chain, newlines included
    return quote(pem, safe="")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _signed_body(field: str, body_json: str, signature_hex: str) -> str:
    # the body is embedded byte for byte: its signature covers exactly these bytes
    return f'{{"{field}":{body_json},"signature":"{signature_hex}"}}'


def create_pccs_app(pki: MockIntelPki, fmspcs: Iterable[bytes] = (DEVNET_FMSPC,)) -> FastAPI:
    """A PCCS-compatible collateral API for the platforms `fmspcs` of the devnet PKI `pki`."""
    known = {fmspc.hex().upper() for fmspc in fmspcs}
    app = FastAPI(title="warden devnet PCCS", docs_url=None, redoc_url=None, openapi_url=None)

    def parts(fmspc: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(collateral_json(pki, bytes.fromhex(fmspc)))
        return loaded

    any_platform = next(iter(sorted(known)), DEVNET_FMSPC.hex().upper())

    @app.get("/sgx/certification/v4/pckcrl")
    def pck_crl(ca: str = "", encoding: str = "pem") -> Response:
        if ca.lower() not in PCK_CA_TYPES:
            return _error(400, f"unknown ca {ca!r}: use one of {', '.join(PCK_CA_TYPES)}")
        der = encoding.lower() == "der"
        crl = pki.pck_crl.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)
        headers = {PCK_CRL_ISSUER_CHAIN: _chain_header(parts(any_platform)["pck_crl_issuer_chain"])}
        media = "application/pkix-crl" if der else "application/x-pem-file"
        return Response(crl, media_type=media, headers=headers)

    @app.get("/sgx/certification/v4/rootcacrl")
    def root_ca_crl() -> Response:
        return Response(pki.root_crl.public_bytes(serialization.Encoding.DER).hex(), media_type="text/plain")

    @app.get("/tdx/certification/v4/tcb")
    def tcb_info(fmspc: str = "") -> Response:
        if not _FMSPC.fullmatch(fmspc):
            return _error(400, f"invalid fmspc {fmspc!r}: 6 bytes of hex")
        if fmspc.upper() not in known:
            return _error(404, f"no TCB info for fmspc {fmspc.upper()}")
        signed = parts(fmspc.upper())
        body = _signed_body("tcbInfo", signed["tcb_info"], signed["tcb_info_signature"])
        headers = {TCB_INFO_ISSUER_CHAIN: _chain_header(signed["tcb_info_issuer_chain"])}
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/tdx/certification/v4/qe/identity")
    def qe_identity() -> Response:  # `update=standard|early`: the devnet has one identity
        signed = parts(any_platform)
        body = _signed_body("enclaveIdentity", signed["qe_identity"], signed["qe_identity_signature"])
        headers = {QE_IDENTITY_ISSUER_CHAIN: _chain_header(signed["qe_identity_issuer_chain"])}
        return Response(body, media_type="application/json", headers=headers)

    return app
