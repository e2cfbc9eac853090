"""One probe: nonce from the control plane → quote binding it from the guest agent → report → recorded identity."""

from __future__ import annotations

from typing import Any

from warden.errors import BadInput
from warden.identity.probe_binding import probe_report_data
from warden.probe.control_plane import ProbeApi
from warden.probe.guest import get_quote


def run_probe(api_url: str | None, api_token: str | None, node: str | None,
              guest_endpoint: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Probe once; the control plane's answer (node, device_id, ppid, changed, …)."""
    if not api_url:
        raise BadInput("no control plane: pass --api-url or set WARDEN_API_URL")
    if not api_token:
        raise BadInput("no API token: set WARDEN_API_TOKEN (or pass --api-token)")
    if not node or not node.strip():
        raise BadInput("no node name: pass --node or set WARDEN_NODE (the node this CVM runs on)")
    name = node.strip()
    api = ProbeApi(api_url, api_token)
    try:
        nonce = api.take_nonce(name)
        quote = get_quote(probe_report_data(nonce, name), guest_endpoint)
        return api.report(name, nonce, quote.quote, quote.event_log)
    finally:
        api.close()
