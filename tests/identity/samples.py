"""Real attestation samples kept with the tests (their collateral has expired: verify at a fixed time)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"
SAMPLE_QUOTE = VECTORS / "tdx_quote"  # TDX v4 quote with its Intel PCK chain
SAMPLE_COLLATERAL = VECTORS / "tdx_quote_collateral.json"
GUEST_REPORT = VECTORS / "tdx-guest-report.json"  # a dstack 0.6 guest's GetQuote answer: quote + event log

SAMPLE_PPID = bytes.fromhex("811dca2a26b952e85bb6448b097ba4fd")


def sample_quote() -> bytes:
    return SAMPLE_QUOTE.read_bytes()


def sample_collateral() -> str:
    return SAMPLE_COLLATERAL.read_text()


def sample_time() -> int:
    """One hour after the sample TCB info was issued: inside every validity window of the collateral."""
    issued = json.loads(json.loads(sample_collateral())["tcb_info"])["issueDate"]
    return int(dt.datetime.fromisoformat(issued.replace("Z", "+00:00")).timestamp()) + 3600


def guest_report() -> dict[str, str]:
    data: dict[str, str] = json.loads(GUEST_REPORT.read_text())
    return data
