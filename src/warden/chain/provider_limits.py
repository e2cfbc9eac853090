"""What an RPC provider accepts: the widest eth_getLogs range and the largest JSON-RPC batch.

Learned from the provider's own error answers and remembered per endpoint in the log cache, so the next
run starts at the known window; a value given from outside (a profile setting) is used as it is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Phrases nodes use when a range or result set is too large (geth, erigon, alchemy, infura, base …).
RANGE_REFUSALS = (
    "range",
    "limit",
    "too many",
    "too large",
    "exceed",
    "response size",
    "query returned more than",
    "timeout",
    "timed out",
)
BATCH_REFUSALS = ("batch",)
RANGE_CODES = (-32005,)  # -32602 (invalid params) counts only with range text
# Limits providers commonly use; tried first when an error does not say the number.
COMMON_RANGES = (100_000, 50_000, 20_000, 10_000, 5_000, 3_000, 2_000, 1_000, 500, 100)

_NUMBER = re.compile(r"(?<![0-9a-fx])(\d[\d,]*)(\s*k\b)?", re.IGNORECASE)


@dataclass
class ProviderLimits:
    """`max_range`/`max_batch` None: not known yet. `batches` False: the provider refuses batches.
    `multicall`: whether Multicall3 answers on this endpoint's chain (None: not tried yet)."""

    max_range: int | None = None
    max_batch: int | None = None
    batches: bool = True
    multicall: bool | None = None


def endpoint_key(url: str) -> str:
    """A stable key for an endpoint that does not store its URL (RPC URLs often carry an API key)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def is_range_refusal(exc: Exception) -> bool:
    text = str(exc).lower()
    return getattr(exc, "code", None) in RANGE_CODES or any(phrase in text for phrase in RANGE_REFUSALS)


def is_result_count_refusal(exc: Exception) -> bool:
    """Too many results (not too many blocks): a narrower window helps here, but it is no range limit."""
    text = str(exc).lower()
    return "result" in text and ("more than" in text or "too many" in text)


def range_in_message(exc: Exception) -> int | None:
    """The block range the error names ("exceed maximum block range: 10000", "up to a 2K block range")."""
    if is_result_count_refusal(exc):
        return None
    return _first_number(str(exc))


def batch_in_message(exc: Exception) -> int | None:
    """The batch size the error names ("batch size too large, max 100")."""
    return _first_number(str(exc))


def _first_number(text: str) -> int | None:
    for match in _NUMBER.finditer(text):
        value = int(match.group(1).replace(",", "")) * (1000 if match.group(2) else 1)
        if value > 1:
            return value
    return None
