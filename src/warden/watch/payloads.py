"""What a webhook receives: the alert as JSON (warden's own shape) or as a Slack message, and its signature.

Signature: `X-Warden-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the timestamp
(unix seconds) in `X-Warden-Timestamp`; a receiver recomputes it over the raw body and rejects old
timestamps, so a captured request cannot be replayed later. `X-Warden-Alert-Id` lets it drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from warden.watch.store import AlertView

SIGNATURE_HEADER = "X-Warden-Signature"
TIMESTAMP_HEADER = "X-Warden-Timestamp"
ALERT_ID_HEADER = "X-Warden-Alert-Id"
KIND_TITLES = {
    "drift": "Device drift",
    "compose-hash-not-allowed": "Compose hash no longer allowed",
    "out-of-band-change": "Allowlist changed outside warden",
    "allow-any-device-on": "allowAnyDevice switched on",
    "ownership-moved": "App ownership moved",
    "test": "Test alert",
}


def alert_payload(alert: AlertView, format: str) -> dict[str, Any]:
    """The body for a webhook of this format."""
    if format == "slack":
        title = KIND_TITLES.get(alert.kind, alert.kind)
        text = f"*warden: {title}* ({alert.app_name or alert.app})\n{alert.message}"
        if alert.fix:
            text += f"\nFix: `{alert.fix}`"
        return {"text": text}
    return {"type": "warden.alert", "alert": _public(alert)}


def _public(alert: AlertView) -> dict[str, Any]:
    """The alert without its delivery bookkeeping (a receiver has no use for it)."""
    body = alert.as_json()
    body.pop("deliveries", None)
    return body


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Warden-Signature` value for this body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (and the tests): recompute and compare in constant time."""
    try:
        expected = signature(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, header)


def signed_headers(secret: str, timestamp: int, body: bytes, alert_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "warden-alerts",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        ALERT_ID_HEADER: alert_id,
    }
