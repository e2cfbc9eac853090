"""dstack's guest API (`POST /GetKey`, `/GetQuote`, `/Info`, `/Sign`, `/Verify`, `/Version`, …) for a devnet
CVM, so the unmodified `dstack-sdk` client works against it over HTTP or a unix socket.

The app serves one guest, or whatever guest a callable returns at each request (the devnet's CVMs change
as they are rebooted or stopped); the callable may block (it may boot the CVM against a KMS), so every
request is answered on a worker thread.

A failure answers `{"error": …}` with the error's HTTP status from `warden.errors`: 400 a malformed
request, 404 an unknown method, 503 the CVM or its KMS could not do it (no keys yet, a refusal).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from warden.body_guard import BodyGuard, error_key_body
from warden.errors import BadInput, NotFound, WardenError
from warden.hexutil import parse_hex
from warden.identity.bootinfo import mr_aggregated
from warden.identity.eventlog import app_identity
from warden.identity.quote import TdMeasurements
from warden.keys import secp256k1
from warden.kms.server import request_object
from warden.tee.guest import Guest

MAX_BODY = 1 << 20  # a guest request is a few hundred bytes
SIGN_PATH, SIGN_PURPOSE = "vms", "signing"  # the key dstack's Sign uses
SECP256K1_NAMES = ("secp256k1", "k256", "")


def create_guest_app(source: Guest | Callable[[], Guest]) -> FastAPI:
    """The guest API of a guest, or of `source()` at each request (a WardenError when there is none to answer)."""
    current: Callable[[], Guest] = source if callable(source) else lambda: source
    app = FastAPI(title="warden devnet guest agent", docs_url=None, redoc_url=None)
    app.add_middleware(BodyGuard, max_bytes=MAX_BODY, error_body=error_key_body, always_json=True)

    def handle(method: str, body: dict[str, Any]) -> dict[str, Any]:
        guest = current()
        cvm = guest.cvm
        if method == "GetKey":
            algorithm = str(body.get("algorithm") or "secp256k1")
            if algorithm not in (*SECP256K1_NAMES, "ed25519"):
                raise BadInput(f"unsupported algorithm {algorithm!r}")
            result = guest.get_key(str(body.get("path") or ""), str(body.get("purpose") or ""))
            return {"key": result.key.hex(), "signature_chain": [s.hex() for s in result.signature_chain]}
        if method == "GetQuote":
            report_data = _hex(body.get("report_data"), "report_data")
            if not report_data or len(report_data) > 64:
                raise BadInput("report_data must be 1 to 64 bytes")
            return cvm.get_quote_response(report_data)
        if method == "Info":
            return _info(guest)
        if method == "Version":
            return {"version": guest.version, "rev": "warden-devnet"}
        if method == "EmitEvent":
            cvm.emit_event(str(body.get("event", "")), _hex(body.get("payload"), "payload"))
            return {}
        if method == "Sign":
            return _sign(guest, str(body.get("algorithm", "")), _hex(body.get("data"), "data"))
        if method == "Verify":
            return {"valid": _verify(body)}
        if method == "GetTlsKey":
            names = tuple(str(n) for n in body.get("alt_names") or [])
            cert = guest.request_certificate(str(body.get("subject") or cvm.app_id.hex()), names)
            return {"key": cert.key_pem, "certificate_chain": cert.chain}
        raise NotFound(f"unknown method {method}")

    @app.post("/{method}")
    async def route(method: str, request: Request) -> JSONResponse:
        try:
            body = request_object(await request.body())  # BodyGuard has bounded its size and nesting
            return JSONResponse(await run_in_threadpool(handle, method.removeprefix("prpc/"), body))
        except WardenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.http_status)

    return app


def _hex(value: Any, name: str) -> bytes:
    if value in (None, ""):
        return b""
    if not isinstance(value, str):
        raise BadInput(f"{name} must be hex text")
    return parse_hex(value, name)


def _info(guest: Guest) -> dict[str, Any]:
    cvm = guest.cvm
    events = cvm.event_log()
    identity = app_identity(events)
    m = cvm.measurements
    td = TdMeasurements(m.mr_td, m.rt_mr0, m.rt_mr1, m.rt_mr2, cvm.rt_mr3, bytes(64), bytes(48), bytes(48), bytes(48))
    aggregated = mr_aggregated(td, cvm.rt_mr3).hex()
    tcb_info = {
        "mrtd": m.mr_td.hex(),
        "rtmr0": m.rt_mr0.hex(),
        "rtmr1": m.rt_mr1.hex(),
        "rtmr2": m.rt_mr2.hex(),
        "rtmr3": cvm.rt_mr3.hex(),
        "mr_aggregated": aggregated,
        "os_image_hash": cvm.os_image_hash.hex(),
        "compose_hash": cvm.compose_hash.hex(),
        # like a real guest agent: the device id of an unverified self-report is sha256(b"")
        "device_id": hashlib.sha256(b"").hexdigest(),
        "app_compose": "",
        "event_log": [e.as_json() for e in events],
    }
    return {
        "app_id": cvm.app_id.hex(),
        "instance_id": cvm.instance_id.hex(),
        "app_cert": guest.certificate.chain[0] if guest.certificate else "",
        "tcb_info": json.dumps(tcb_info),
        "app_name": cvm.app_id.hex(),
        "device_id": tcb_info["device_id"],
        "mr_aggregated": aggregated,
        "os_image_hash": cvm.os_image_hash.hex(),
        "key_provider_info": (identity.key_provider or b"").decode(errors="replace"),
        "compose_hash": cvm.compose_hash.hex(),
        "vm_config": cvm.vm_config(),
    }


def _sign(guest: Guest, algorithm: str, data: bytes) -> dict[str, Any]:
    result = guest.get_key(SIGN_PATH, SIGN_PURPOSE)
    chain = [s.hex() for s in result.signature_chain]
    if algorithm == "ed25519":
        key = Ed25519PrivateKey.from_private_bytes(result.key)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"signature": key.sign(data).hex(), "public_key": public.hex(), "signature_chain": chain}
    if algorithm in ("secp256k1", "secp256k1_prehashed"):
        digest = data if algorithm == "secp256k1_prehashed" else hashlib.sha256(data).digest()
        if len(digest) != 32:
            raise BadInput("secp256k1_prehashed needs a 32-byte digest")
        signature = secp256k1.sign_recoverable(result.key, digest)
        return {"signature": signature.hex(), "public_key": result.public_key.hex(), "signature_chain": chain}
    raise BadInput(f"unsupported algorithm {algorithm!r}")


def _verify(body: dict[str, Any]) -> bool:
    algorithm = str(body.get("algorithm", ""))
    data, signature = _hex(body.get("data"), "data"), _hex(body.get("signature"), "signature")
    public_key = _hex(body.get("public_key"), "public_key")
    if algorithm == "ed25519":
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True
    if algorithm in ("secp256k1", "secp256k1_prehashed"):
        digest = data if algorithm == "secp256k1_prehashed" else hashlib.sha256(data).digest()
        try:
            return secp256k1.recover(signature, digest) == secp256k1.normalize_public_key(public_key)
        except WardenError:
            return False
    raise BadInput(f"unsupported algorithm {algorithm!r}")
