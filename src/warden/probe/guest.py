"""The CVM's dstack guest agent, through the unmodified dstack-sdk: a quote for given report_data.

The endpoint is the SDK's own choice unless given: DSTACK_SIMULATOR_ENDPOINT, else the unix socket
/var/run/dstack.sock (which a container sees only when it is mounted).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from warden.errors import BadInput, OperationFailed
from warden.httpdetail import answer_detail

MOUNT_HINT = (
    "mount the guest agent's socket into the container (volumes: - /var/run/dstack.sock:/var/run/dstack.sock) "
    "or set DSTACK_SIMULATOR_ENDPOINT"
)


@dataclass(frozen=True)
class GuestQuote:
    quote: str  # hex
    event_log: str  # dstack's JSON text


def get_quote(report_data: bytes, endpoint: str | None = None, *, timeout: float = 10.0) -> GuestQuote:
    """GetQuote from the guest agent at `endpoint` (None: where dstack-sdk looks by default)."""
    try:
        from dstack_sdk import DstackClient
        from dstack_sdk.dstack_client import get_endpoint
    except ImportError:
        raise BadInput("the probe needs dstack-sdk: pip install 'dstack-sdk==0.5.4'") from None
    where = get_endpoint(endpoint)
    try:
        client = DstackClient(where, timeout=timeout)
    except FileNotFoundError:
        raise OperationFailed(f"no dstack guest agent at {where}: {MOUNT_HINT}") from None
    try:
        answer = client.get_quote(report_data)
    except httpx.HTTPStatusError as exc:
        refused = answer_detail(exc.response, "error")
        raise OperationFailed(f"the guest agent at {where} refused GetQuote: {refused}") from None
    except httpx.HTTPError as exc:
        raise OperationFailed(f"cannot reach the guest agent at {where}: {exc or type(exc).__name__}") from None
    return GuestQuote(answer.quote, answer.event_log)
