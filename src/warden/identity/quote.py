"""TDX quotes: parse (never trusted on its own) and verify with dcap-qvl against Intel's root or a given one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import dcap_qvl

from warden.errors import BadInput
from warden.hexutil import parse_hex

T = TypeVar("T")

HEX_BYTES = frozenset(b"0123456789abcdefABCDEF \t\r\n")


class QuoteError(BadInput):
    """A quote (or its collateral) is malformed or does not verify."""


@dataclass(frozen=True)
class TdMeasurements:
    mr_td: bytes
    rt_mr0: bytes
    rt_mr1: bytes
    rt_mr2: bytes
    rt_mr3: bytes
    report_data: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes

    def rtmr(self, index: int) -> bytes:
        return (self.rt_mr0, self.rt_mr1, self.rt_mr2, self.rt_mr3)[index]


@dataclass(frozen=True)
class Quote:
    """What the quote says about itself. Nothing here is trustworthy until `verify_quote` succeeds."""

    raw: bytes
    tee: str  # "tdx" or "sgx"
    version: int
    fmspc: str
    user_data: bytes  # header field; sha256 of it was the device id before dstack 0.5.6
    td: TdMeasurements | None  # None for SGX quotes
    ppid: bytes | None  # from the embedded PCK certificate


@dataclass(frozen=True)
class VerifiedQuote:
    quote: Quote
    tcb_status: str
    advisory_ids: tuple[str, ...]
    ppid: bytes  # from the verified PCK certificate chain


def quote_bytes(data: bytes) -> bytes:
    """A quote as stored: raw binary, or hex text (0x optional, whitespace ignored)."""
    text = data.strip()
    head = text[2:66] if text[:2].lower() == b"0x" else text[:64]
    if head and all(c in HEX_BYTES for c in head):  # binary quotes start with a version byte, not text
        # hex text may be wrapped over lines: only the digits count
        return parse_hex(b"".join(text.split()).decode(errors="replace"), "quote (hex text)", error=QuoteError)
    return data


def parse_quote(raw: bytes, *, certificates: bool = True) -> Quote:
    """The quote's header and body; with `certificates`, also FMSPC and PPID from its PCK certificate."""
    try:
        parsed: Any = dcap_qvl.parse_quote(raw)
        tee = "tdx" if parsed.is_tdx() else "sgx"
        version, user_data = int(parsed.header.version), bytes(parsed.header.user_data)
        td = None
        if parsed.is_tdx():
            r = parsed.report
            td = TdMeasurements(
                bytes(r.mr_td), bytes(r.rt_mr0), bytes(r.rt_mr1), bytes(r.rt_mr2), bytes(r.rt_mr3),
                bytes(r.report_data), bytes(r.mr_config_id), bytes(r.mr_owner), bytes(r.mr_owner_config),
            )  # fmt: skip
    except (ValueError, TypeError, AttributeError) as exc:
        raise QuoteError(f"not a valid quote: {_first_line(exc)}") from None
    # the certification data can be damaged or absent while the body parses: report what is there
    if not certificates:
        return Quote(raw, tee, version, "unknown", user_data, td, None)
    fmspc = _optional(lambda: str(parsed.fmspc())) or "unknown"
    ppid = _optional(lambda: bytes(parsed.pck_extension().ppid))
    return Quote(raw, tee, version, fmspc, user_data, td, ppid)


def _optional(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except (ValueError, TypeError, AttributeError):
        return None


def parse_collateral(text: str) -> Any:
    """QuoteCollateralV3 from its JSON form (what `get_collateral` returns, CRLs and signatures in hex)."""
    try:
        return dcap_qvl.QuoteCollateralV3.from_json(text)
    except (ValueError, TypeError) as exc:
        raise QuoteError(f"invalid collateral: {_first_line(exc)}") from None


def verify_quote(raw: bytes, collateral: Any, now: int, root_ca_der: bytes | None = None) -> VerifiedQuote:
    """Verify signature chain, QE report, TCB level and CRLs at time `now` (unix seconds).

    `root_ca_der` replaces Intel's root (the devnet's mock PKI); None means Intel's production root.
    """
    # dcap-qvl reads the certificates while verifying; the PPID comes from its verified report
    quote = parse_quote(raw, certificates=False)
    if isinstance(collateral, str):
        collateral = parse_collateral(collateral)
    try:
        if root_ca_der is None:
            report: Any = dcap_qvl.verify(raw, collateral, now)
        else:
            report = dcap_qvl.verify_with_root_ca(raw, collateral, root_ca_der, now)
    except (ValueError, TypeError) as exc:
        reason = _first_line(exc)
        hint = " (the collateral is not valid at that time: fetch fresh collateral, or verify as of a time it covers)"
        raise QuoteError(f"quote does not verify: {reason}" + (hint if "xpired" in reason else "")) from None
    ppid = bytes(report.ppid)
    return VerifiedQuote(
        replace(quote, ppid=ppid), str(report.status), tuple(str(a) for a in report.advisory_ids), ppid
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().removeprefix("Verification failed: ").removeprefix("Failed to parse quote: ")
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:300]
