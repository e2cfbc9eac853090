"""`warden attest …`: read TDX attestation the way a KMS does (quote, PPID, device_id, event log)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from warden.chain.inputs import hex0x, parse_ppid
from warden.cli.common import (
    CollateralOption,
    JsonOption,
    PccsUrlOption,
    RootCaOption,
    emit,
    flag,
    new_app,
    note,
    read_file,
    read_root_ca,
    stdout,
)
from warden.errors import BadInput
from warden.identity.attestation import inspect, read_attestation
from warden.identity.device import DeviceIdFormula, device_id, device_id_from_ppid
from warden.identity.quote import parse_quote

app = new_app("attest", "TDX quotes and dstack event logs: what a KMS sees (PPID, device_id, app identity).")
app.info.epilog = "\b\nExample: warden attest device-id --ppid 811dca2a26b952e85bb6448b097ba4fd"

QuoteFileOption = Annotated[
    Path,
    typer.Option("--quote", metavar="FILE", help="Quote: binary, hex text, or a JSON report with quote + event_log."),
]
LegacyFlag = Annotated[
    bool,
    typer.Option("--legacy-device-id", help="Use the pre-0.5.6 formula sha256(quote header user_data)."),
]


def parse_time(text: str) -> int:
    """Unix seconds or an ISO-8601 time (UTC when no zone is given)."""
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"invalid --now {text!r}: use unix seconds or ISO-8601 (2025-06-19T11:16:03Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


EventLogOption = Annotated[Path | None, flag("--event-log", "dstack event log (JSON list).", metavar="FILE")]
NowOption = Annotated[str | None, flag("--now", "Verify as of this time (default: now).", metavar="TIME")]


VerifyFlag = Annotated[
    bool,
    flag(
        "--verify", "Verify with collateral from the PCCS (--pccs-url; default dcap-qvl's, https://pccs.phala.network)."
    ),
]


@app.command("inspect")
def inspect_command(
    quote_file: QuoteFileOption,
    event_log: EventLogOption = None,
    collateral: CollateralOption = None,
    pccs_url: PccsUrlOption = None,
    verify: VerifyFlag = False,
    root_ca: RootCaOption = None,
    now: NowOption = None,
    legacy_device_id: LegacyFlag = False,
    json_out: JsonOption = False,
) -> None:
    """Parse a quote (and event log): TEE, PPID, device_id, app id, compose hash, instance id, RTMR3 replay.

    With --collateral, --pccs-url or --verify the quote is verified (signatures, TCB level, CRLs) against Intel's
    root (a devnet quote: the devnet's root) and its BootInfo shown. Exit 1 when the event log does not replay
    to the quote's RTMR3; exit 3 when the PCCS gave no collateral.

    \b
    Example: warden attest inspect --quote report.json --pccs-url https://pccs.phala.network
    """
    attestation = read_attestation(
        read_file(quote_file, "quote"), read_file(event_log, "event log") if event_log else None
    )
    moment = parse_time(now) if now else int(time.time())
    formula: DeviceIdFormula = "legacy" if legacy_device_id else "ppid"
    coll, root, trust = None, None, None
    if collateral is not None or pccs_url or verify:
        from warden.cli.connect import collateral_source  # the chain stack loads only when verifying

        root, trust = (read_root_ca(root_ca), str(root_ca)) if root_ca else _default_root(attestation.quote)
        coll = collateral_source(collateral, pccs_url)(attestation.quote)
    data = inspect(attestation, collateral=coll, now=moment, root_ca_der=root, device_formula=formula)
    data["trust_root"] = trust
    if not data["verified"]:
        note("not verified (pass --pccs-url URL or --collateral FILE to check signatures and TCB): "
             "treat every value as a claim")  # fmt: skip
    emit(json_out, data, lambda: _summary(data))
    if data["rtmr3_replayed"] is False:
        raise typer.Exit(1)


def _default_root(quote: bytes) -> tuple[bytes | None, str]:
    """Intel's root; the devnet's mock root only for a quote that chains to it (made by this machine's devnet)."""
    import dcap_qvl
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from warden.devnet.fleet import Paths
    from warden.devnet.state import warden_home
    from warden.tee.pki import MockIntelPki, PkiError

    directory = Paths(warden_home()).pki
    if not (directory / "pki.json").exists():
        return None, "intel"
    try:
        devnet_root = MockIntelPki.load(directory).root_ca_der
        chain = x509.load_pem_x509_certificates(bytes(dcap_qvl.parse_quote(quote).cert_chain_pem_bytes()))
    except (PkiError, ValueError):
        return None, "intel"
    if not chain or chain[-1].public_bytes(serialization.Encoding.DER) != devnet_root:
        return None, "intel"
    note(f"the quote chains to the devnet's mock Intel root ({directory}): verifying against it, not Intel's")
    return devnet_root, "devnet"


def _summary(data: dict[str, Any]) -> None:
    rows = [
        ("tee", f"{data['tee']} (quote v{data['quote_version']}, fmspc {data['fmspc']})"),
        ("verified", f"yes, TCB {data['tcb_status']} (root: {data['trust_root']})" if data["verified"] else "no"),
        ("advisories", ", ".join(data["advisory_ids"] or []) or "-"),
        ("ppid", data["ppid"]),
        ("device_id", f"{data['device_id']} ({data['device_id_formula']})"),
        ("app_id", data["app_id"]),
        ("compose_hash", data["compose_hash"]),
        ("instance_id", data["instance_id"]),
        ("os_image_hash", data["os_image_hash"]),
        ("key_provider", data["key_provider"]),
        ("rtmr3", data.get("rtmr3")),
        ("rtmr3 replay", {True: "matches the quote", False: "DOES NOT match the quote", None: "no event log"}[
            data["rtmr3_replayed"]
        ]),
    ]  # fmt: skip
    for key, value in rows:
        stdout.print(f"{key:<14} {value if value not in (None, '') else '-'}", markup=False)


PpidOption = Annotated[str | None, flag("--ppid", "The platform's PPID (16 bytes).", metavar="HEX")]
QuoteOption = Annotated[
    Path | None, flag("--quote", "Read the PPID from this quote's PCK certificate.", metavar="FILE")
]


@app.command("device-id")
def device_id_command(
    ppid: PpidOption = None,
    quote_file: QuoteOption = None,
    legacy_device_id: LegacyFlag = False,
    json_out: JsonOption = False,
) -> None:
    """device_id = sha256(PPID), from a PPID or a quote (the value allowlists hold).

    \b
    Example: warden attest device-id --ppid 811dca2a26b952e85bb6448b097ba4fd
    """
    if (ppid is None) == (quote_file is None):
        raise BadInput("pass exactly one of --ppid and --quote")
    if ppid is not None:
        if legacy_device_id:
            raise BadInput("--legacy-device-id needs --quote (it hashes the quote header, not the PPID)")
        value = parse_ppid(ppid)
        data: dict[str, Any] = {"ppid": hex0x(value), "device_id": hex0x(device_id_from_ppid(value)), "formula": "ppid"}
    else:
        assert quote_file is not None
        quote = parse_quote(read_attestation(read_file(quote_file, "quote")).quote)
        if quote.ppid is None and not legacy_device_id:
            raise BadInput("the quote carries no PCK certificate with a PPID")
        formula: DeviceIdFormula = "legacy" if legacy_device_id else "ppid"
        data = {
            "ppid": hex0x(quote.ppid) if quote.ppid else None,
            "device_id": hex0x(device_id(quote.ppid or b"", quote.user_data, formula)),
            "formula": formula,
        }
    emit(json_out, data, lambda: stdout.print(data["device_id"]))
