"""The KMS over HTTP: `POST /prpc/KMS.<Method>` (and `/prpc/<Method>`) with JSON bodies, as dstack routes them.

A failure answers `{"error": …}` (what dstack's KMS clients read) with the error's HTTP status from
`warden.errors`: 400 a malformed request, 403 a denial (the chain said no), 404 an unknown method, 503 the
chain could not be read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from warden.body_guard import BodyGuard, error_key_body
from warden.errors import BadInput, NotFound, WardenError
from warden.jsonbody import JsonRefused, loads
from warden.kms.decision_tally import decisions_text
from warden.kms.service import KmsService

MAX_BODY = 1 << 20  # quotes and event logs are a few KiB; anything near a MiB is not a KMS request


def request_object(raw: bytes) -> dict[str, Any]:
    """A request body: a JSON object, or nothing at all (a method without arguments)."""
    try:
        body = loads(raw) if raw.strip() else {}
    except JsonRefused as exc:
        raise BadInput(f"request body is {exc}") from None
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def _in_threadpool(
    handler: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """A blocking method run on a worker thread, so the event loop keeps serving."""

    async def run(body: dict[str, Any]) -> dict[str, Any]:
        return await run_in_threadpool(handler, body)

    return run


def create_kms_app(service: KmsService) -> FastAPI:
    app = FastAPI(title="warden KMS", docs_url=None, redoc_url=None)
    app.add_middleware(BodyGuard, max_bytes=MAX_BODY, error_body=error_key_body, always_json=True)
    blocking: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "GetMeta": lambda _body: service.meta(),
        "GetAppEnvEncryptPubKey": service.env_encrypt_pub_key,
        "SignCert": service.sign_cert,
        "GetKmsKey": service.get_kms_key,
        "GetKmsAttestation": service.kms_attestation,
    }
    methods: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        name: _in_threadpool(handler) for name, handler in blocking.items()
    }
    # the hot path: computation on the event loop, the chain question on the authorizer's threads (with fixed
    # collateral, two thread hand-offs per request instead of four: they cost more than the JSON and HTTP work)
    methods["GetAppKey"] = service.get_app_key_async

    @app.get("/health", response_class=PlainTextResponse)
    def health() -> str:
        return "OK"  # liveness only: restarting a KMS does not bring its chain back, so this stays OK

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """This process's key-release decisions by reason, for Prometheus (names and counts only, no keys)."""
        return Response(decisions_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    def status() -> JSONResponse:
        """Readiness: HTTP 200 while the chain answers, 503 (and key requests are denied) while it does not."""
        body, chain_answers = service.health()
        return JSONResponse(body, status_code=200 if chain_answers else 503)

    @app.api_route("/prpc/{method}", methods=["GET", "POST"])
    async def prpc(method: str, request: Request) -> JSONResponse:
        try:
            handler = methods.get(method.removeprefix("KMS."))
            if handler is None:
                raise NotFound(f"unknown method {method}")
            body = request_object(await request.body())  # BodyGuard has bounded its size and nesting
            return JSONResponse(await handler(body))
        except WardenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.http_status)

    return app
