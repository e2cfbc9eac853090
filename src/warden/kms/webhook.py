"""The auth webhook a dstack KMS calls before releasing keys, with the HTTP contract of dstack's auth-eth.

- `POST /bootAuth/app` and `POST /bootAuth/kms` take a BootInfo (camelCase JSON, hex with or without
  0x) and answer HTTP 200 `{"isAllowed", "reason", "gatewayAppId"}` from `isAppAllowed` / `isKmsAllowed`.
- A body that does not fit the schema: HTTP 400 `{"isAllowed": false, "reason": "invalid authorization
  request", "gatewayAppId": ""}` and no chain call. A body over the size limit: the same body, HTTP 413.
- The chain cannot answer: HTTP 200 `{"isAllowed": false, "reason": "authorization backend unavailable",
  "gatewayAppId": ""}` (the cause is logged, not returned).
- `GET /`: the KMS contract, chain id, gateway app id and app implementation; HTTP 500
  `{"status": "error", "message": "authorization backend unavailable"}` when the chain cannot answer.

Deliberate differences from auth-eth, all of which only ever deny: a value of the wrong JSON type (a
number or null where hex is expected) is refused rather than coerced to a string; a body that is not JSON
is a 400 with the invalid-request body (auth-eth's error handler answers 500); bodies over 64 KiB are
refused with 413 (auth-eth: 1 MiB, then 500).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from warden.body_guard import BodyGuard
from warden.hexutil import parse_hex, strip_0x
from warden.identity.bootinfo import BootInfo
from warden.kms.authorization import BACKEND_UNAVAILABLE, INVALID_REQUEST, Authorizer, Decision
from warden.kms.decision_tally import DECISIONS, decisions_text

log = logging.getLogger("warden.kms.webhook")

MAX_BODY_BYTES = 64 * 1024

INVALID_BODY: dict[str, Any] = {"isAllowed": False, "reason": INVALID_REQUEST, "gatewayAppId": ""}
UNAVAILABLE_BODY: dict[str, Any] = {"isAllowed": False, "reason": BACKEND_UNAVAILABLE, "gatewayAppId": ""}
HEALTH_ERROR_BODY: dict[str, Any] = {"status": "error", "message": BACKEND_UNAVAILABLE}


def _hex_field(size: int) -> Callable[[str], str]:
    """auth-eth's pattern: optional lowercase `0x`, then at most 2*size hex digits (any count, even odd)."""
    pattern = re.compile(rf"(?:0x)?[0-9a-fA-F]{{0,{2 * size}}}")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected at most {size} bytes of hex")
        return value

    return check


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    return value


Hex20 = Annotated[StrictStr, AfterValidator(_hex_field(20))]
Hex32 = Annotated[StrictStr, AfterValidator(_hex_field(32))]
Text = Annotated[StrictStr, AfterValidator(_utf8)]


def hex_value(text: str, size: int) -> bytes:
    """Strip 0x and left-pad with zeros to `size` bytes (an odd digit count pads by one nibble)."""
    return parse_hex(strip_0x(text).rjust(2 * size, "0"), "hex field", size)


class BootAuthRequest(BaseModel):
    """The request body of both POST endpoints; teeVariant, keyProviderInfo and unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    mr_aggregated: Hex32 = Field(alias="mrAggregated")
    os_image_hash: Hex32 = Field(alias="osImageHash")
    app_id: Hex20 = Field(alias="appId")
    compose_hash: Hex32 = Field(alias="composeHash")
    instance_id: Hex20 = Field(alias="instanceId")
    device_id: Hex32 = Field(alias="deviceId")
    mr_system: Hex32 = Field(default="", alias="mrSystem")
    tcb_status: Annotated[Text, Field(max_length=128)] = Field(default="", alias="tcbStatus")
    advisory_ids: list[Annotated[Text, Field(max_length=256)]] = Field(
        default_factory=list, alias="advisoryIds", max_length=128
    )

    def boot_info(self) -> BootInfo:
        return BootInfo(
            tee_variant="",
            mr_aggregated=hex_value(self.mr_aggregated, 32),
            os_image_hash=hex_value(self.os_image_hash, 32),
            mr_system=hex_value(self.mr_system, 32),
            app_id=hex_value(self.app_id, 20),
            compose_hash=hex_value(self.compose_hash, 32),
            instance_id=hex_value(self.instance_id, 20),
            device_id=hex_value(self.device_id, 32),
            key_provider_info=b"",
            tcb_status=self.tcb_status,
            advisory_ids=tuple(self.advisory_ids),
        )


def parse_boot_request(data: Any) -> BootInfo:
    """A decoded JSON body to a BootInfo, by the webhook's schema; ValueError naming the first bad field."""
    try:
        return BootAuthRequest.model_validate(data).boot_info()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ValueError(f"{INVALID_REQUEST}: {where}: {first['msg']}") from None


def decision_body(decision: Decision) -> dict[str, Any]:
    """The 200 answer; a fail-closed denial carries auth-eth's fixed reason, not the cause."""
    if decision.unavailable:
        return dict(UNAVAILABLE_BODY)
    return {"isAllowed": decision.allowed, "reason": decision.reason, "gatewayAppId": decision.gateway_app_id}


def create_webhook_app(authorizer: Authorizer, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The webhook as an ASGI application (serve it with uvicorn, or see `warden auth serve`)."""
    app = FastAPI(
        title="warden auth webhook",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # auth-eth's invalid-request body for a body too large (413) or nested too deep (400) as well
    app.add_middleware(BodyGuard, max_bytes=max_body_bytes, error_body=lambda _s, _m: INVALID_BODY, always_json=True)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        return JSONResponse(INVALID_BODY, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        # FastAPI answers an unreadable body with its own HTTP 400 ("error parsing the body")
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
            return JSONResponse(INVALID_BODY, status_code=400)
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)

    def decide(check: Callable[[BootInfo], Decision], body: BootAuthRequest, kind: str) -> JSONResponse:
        try:
            decision = check(body.boot_info())
        except Exception as exc:  # the authorizer fails closed by itself; this is the last line
            log.error("%s authorization failed: %s", kind, type(exc).__name__)
            decision = Decision.backend_failure(type(exc).__name__)
        DECISIONS.record(f"webhook-{kind}", decision.allowed, decision.reason)
        return JSONResponse(decision_body(decision))

    @app.post("/bootAuth/app")
    def boot_auth_app(body: BootAuthRequest) -> JSONResponse:
        return decide(authorizer.authorize_app, body, "app")

    @app.post("/bootAuth/kms")
    def boot_auth_kms(body: BootAuthRequest) -> JSONResponse:
        return decide(authorizer.authorize_kms, body, "kms")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """This process's boot decisions by reason, for Prometheus."""
        return Response(decisions_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    def health() -> JSONResponse:
        try:
            info = authorizer.info()
        except Exception:
            return JSONResponse(HEALTH_ERROR_BODY, status_code=500)
        return JSONResponse(
            {
                "status": "ok",
                "kmsContractAddr": info.kms_contract_addr,
                "ethRpcUrl": info.eth_rpc_url,
                "gatewayAppId": info.gateway_app_id,
                "chainId": info.chain_id,
                "appAuthImplementation": info.app_implementation,  # the older name, kept by auth-eth
                "appImplementation": info.app_implementation,
            }
        )

    return app
