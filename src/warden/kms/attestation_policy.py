"""How the KMS checks a caller: a verified quote, report_data bound to the caller's key, a replayed event log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warden.identity.bootinfo import BootInfo, build_boot_info, os_image_hash_of_vm_config
from warden.identity.device import DeviceIdFormula
from warden.identity.eventlog import EventLogError, parse_event_log
from warden.identity.quote import QuoteError, VerifiedQuote, parse_collateral, quote_bytes, verify_quote


@dataclass
class AttestationPolicy:
    """`root_ca_der` None trusts Intel's root; `collateral` returns the collateral for a quote."""

    collateral: Callable[[bytes], Any]
    root_ca_der: bytes | None = None
    device_formula: DeviceIdFormula = "ppid"
    clock: Callable[[], float] = field(default=time.time)

    @property
    def may_block(self) -> bool:
        """Whether checking a quote may wait on I/O: any collateral source but a fixed one may fetch (a PCCS)."""
        return not isinstance(self.collateral, FixedCollateral)

    def verify(self, raw: bytes) -> VerifiedQuote:
        """Verify a quote now, against this policy's root and collateral (raises QuoteError)."""
        return verify_quote(raw, self.collateral(raw), int(self.clock()), self.root_ca_der)

    def boot_info(self, attestation: dict[str, Any], report_data: bytes, *, boottime: bool = False) -> BootInfo:
        """BootInfo of a caller whose quote binds `report_data`; raises QuoteError / EventLogError otherwise."""
        quote_hex = attestation.get("quote")
        if not isinstance(quote_hex, str):
            raise QuoteError("attestation has no quote")
        verified = self.verify(quote_bytes(quote_hex.encode()))
        td = verified.quote.td
        if td is None:
            raise QuoteError("only TDX quotes are accepted")
        if td.report_data != report_data:
            raise QuoteError("the quote's report_data does not bind the requester's key")
        log = attestation.get("event_log")
        if log in (None, "", []):
            raise EventLogError("attestation has no event log")
        events = parse_event_log(log)
        vm_config = attestation.get("vm_config")
        return build_boot_info(
            verified,
            events,
            vm_config_os_image_hash=os_image_hash_of_vm_config(vm_config if isinstance(vm_config, str) else None),
            use_boottime_mr=boottime,
            device_formula=self.device_formula,
        )


class FixedCollateral:
    """One collateral for every quote, parsed once: checking a quote against it is computation only."""

    def __init__(self, parsed: Any) -> None:
        self.parsed = parsed

    def __call__(self, _quote: bytes) -> Any:
        return self.parsed


def fixed_collateral(collateral_json: str) -> Callable[[bytes], Any]:
    """One collateral for every quote (the devnet's mock PKI, or a file fetched ahead of time)."""
    return FixedCollateral(parse_collateral(collateral_json))
