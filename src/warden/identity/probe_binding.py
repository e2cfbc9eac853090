"""What a `warden probe` quote's report_data must be: a domain-separated hash of the nonce and the node name.

    report_data = sha512(b"warden-probe:v1:" ‖ nonce (32 bytes) ‖ UTF-8 node name)   (exactly 64 bytes)

The nonce has a fixed length, so the name that follows it cannot be shifted into it; the prefix keeps a
probe quote from ever meaning anything to another verifier (a KMS binds its requester keys differently).
"""

from __future__ import annotations

import hashlib

from warden.errors import BadInput

DOMAIN = b"warden-probe:v1:"
NONCE_BYTES = 32


def probe_report_data(nonce: bytes, node: str) -> bytes:
    """The 64 bytes of report_data that bind `nonce` to `node`."""
    if len(nonce) != NONCE_BYTES:
        raise BadInput(f"a probe nonce is {NONCE_BYTES} bytes, got {len(nonce)}")
    return hashlib.sha512(DOMAIN + nonce + node.encode()).digest()
