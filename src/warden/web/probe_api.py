"""`warden probe`'s two calls under /api/probe: take a nonce for a node, post the quote that binds it.

Same token and error answers as the rest of /api (`warden.web.api`): 401 without a workspace token, 404
for a node the workspace cannot see, 400 a malformed report or a quote that does not verify, 403 a report
that is refused (replayed or expired nonce, a nonce of another node, report_data that does not bind it, a
quote from another node's machine). A refused report changes nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from warden.errors import OperationFailed
from warden.fleet.probe import ProbeReport, ProbeResult, accept_probe
from warden.fleet.probe_nonces import DEFAULT_TTL_SECONDS, ProbeNonces
from warden.web.api import Plane, WardenRoute, Workspace, answers, plane_of
from warden.web.models import Answer, Bytes32, ErrorDetail, Hex

REFUSED: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorDetail,
        "description": "Refused: a replayed or expired nonce, another node's nonce or quote, an unbound quote",
    }
}


def probe_nonces(request: Request) -> ProbeNonces:
    """The app's nonce book (`app.state.probe_nonces`), made on first use over the control plane's database."""
    state = request.app.state
    nonces: ProbeNonces | None = getattr(state, "probe_nonces", None)
    if nonces is None:
        nonces = state.probe_nonces = ProbeNonces(plane_of(request).fleet)
    return nonces


Nonces = Annotated[ProbeNonces, Depends(probe_nonces)]

router = APIRouter(prefix="/api/probe", tags=["probe"], route_class=WardenRoute, responses=answers(401))


class NonceRequest(BaseModel):
    node: str = Field(description="The node the probe's CVM runs on")


class NonceAnswer(Answer):
    node: str
    nonce: Bytes32 = Field(description="32 random bytes; single use")
    expires_at: int = Field(description=f"Unix seconds; a nonce is valid {DEFAULT_TTL_SECONDS} s by default")


class ProbeReportBody(BaseModel):
    node: str
    nonce: str = Field(description="The nonce from POST /api/probe/nonce (hex)")
    quote: str = Field(description="GetQuote's quote (hex); report_data = sha512('warden-probe:v1:' ‖ nonce ‖ node)")
    event_log: str | list[dict[str, Any]] = Field(description="GetQuote's event log (its JSON text, or the list)")


class ProbeAnswer(Answer):
    """The identity recorded for the node."""

    node: str
    device_id: Bytes32
    old_device_id: Bytes32 | None
    changed: bool
    flagged_cvms: list[str]
    ppid: Hex
    tcb_status: str
    app_id: Hex | None
    compose_hash: Bytes32 | None
    instance_id: Hex | None


@router.post("/nonce", responses=answers(400, 404))
def take_nonce(body: NonceRequest, workspace: Workspace, nonces: Nonces) -> NonceAnswer:
    """A fresh single-use nonce for the node; its quote's report_data must bind it (docs/probe.md)."""
    return NonceAnswer.model_validate(nonces.issue(workspace, body.node.strip()).as_json())


@router.post("/report", responses=answers(400, 404, 503) | REFUSED)
async def post_report(body: ProbeReportBody, workspace: Workspace, plane: Plane, nonces: Nonces) -> ProbeAnswer:
    """Verify the probe's quote and event log; record the node's PPID, device id and identity history."""
    policy = plane.attestation
    if policy is None:
        raise OperationFailed("this control plane verifies no quotes (start it with --root-ca/--collateral)")
    report = ProbeReport.parse(body.node, body.nonce, body.quote, body.event_log)
    accept = partial(accept_probe, nonces, workspace, report, verify=policy.verify, record=plane.record_quote)
    result: ProbeResult = await run_in_threadpool(accept)
    return ProbeAnswer.model_validate(result.as_json())
