"""A `warden probe` report from inside a CVM: check it binds a nonce we issued for that node, then record it.

The order keeps bad reports cheap and lossless: the nonce is checked first (a stale or replayed one costs
no verification), then the quote is verified and must carry `probe_report_data(nonce, node)`, the event
log must replay to its RTMR3, and its PPID must not be another node's. Only then is the nonce spent and
the identity recorded; if recording fails the nonce is given back, so nothing is lost and the probe can
retry. A refused report changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from warden.errors import BadInput
from warden.fleet import models as m
from warden.fleet.probe_nonces import ProbeNonces, ProbeRefused
from warden.fleet.store import IdentityUpdate, NotFound, WorkspaceRef
from warden.hexutil import hex0x, parse_hex
from warden.identity.eventlog import Event, EventLogError, app_identity, parse_event_log, replay
from warden.identity.probe_binding import NONCE_BYTES, probe_report_data
from warden.identity.quote import QuoteError, VerifiedQuote, quote_bytes

Verify = Callable[[bytes], VerifiedQuote]  # the control plane's attestation policy
Record = Callable[[WorkspaceRef, str, bytes], IdentityUpdate]  # ControlPlane.record_quote


@dataclass(frozen=True)
class ProbeReport:
    """What the probe posts: the node it runs on, the nonce it was given, and dstack's GetQuote answer."""

    node: str
    nonce: bytes
    quote: bytes
    event_log: Any  # dstack's JSON text, or the parsed list

    @classmethod
    def parse(cls, node: str, nonce: str, quote: str, event_log: Any) -> ProbeReport:
        """From the JSON body's fields; malformed values are BadInput naming the field."""
        if not node.strip():
            raise BadInput("a probe report needs the node's name")
        return cls(node.strip(), parse_hex(nonce, "nonce", NONCE_BYTES), quote_bytes(quote.encode()), event_log)


@dataclass(frozen=True)
class ProbeResult:
    update: IdentityUpdate
    verified: VerifiedQuote
    events: list[Event]

    def as_json(self) -> dict[str, Any]:
        identity = app_identity(self.events)
        return self.update.as_json() | {
            "ppid": hex0x(self.verified.ppid),
            "tcb_status": self.verified.tcb_status,
            "app_id": hex0x(identity.app_id) if identity.app_id is not None else None,
            "compose_hash": hex0x(identity.compose_hash) if identity.compose_hash is not None else None,
            "instance_id": hex0x(identity.instance_id) if identity.instance_id is not None else None,
        }


def accept_probe(
    nonces: ProbeNonces, workspace: WorkspaceRef, report: ProbeReport, *, verify: Verify, record: Record
) -> ProbeResult:
    """Verify a probe report and record the node's identity; ProbeRefused / QuoteError / EventLogError else."""
    nonces.check(workspace, report.node, report.nonce)
    verified = verify(report.quote)
    td = verified.quote.td
    if td is None:
        raise QuoteError("a probe report needs a TDX quote")
    if td.report_data != probe_report_data(report.nonce, report.node):
        raise ProbeRefused(
            f"the quote's report_data does not bind nonce {hex0x(report.nonce)} for node {report.node}: "
            "it must be sha512(b'warden-probe:v1:' + nonce + node name) (see docs/probe.md)"
        )
    if report.event_log in (None, "", []):
        raise EventLogError("a probe report needs the event log GetQuote returned")
    events = parse_event_log(report.event_log)
    if replay(events, 3) != td.rt_mr3:
        raise EventLogError("the event log does not replay to the quote's RTMR3: send the one GetQuote returned")
    _refuse_another_nodes_machine(nonces, workspace, report.node, verified.ppid)
    spent_at = nonces.spend(workspace, report.node, report.nonce)
    try:
        update = record(workspace, report.node, report.quote)
    except BaseException:
        nonces.unspend(workspace, report.nonce, spent_at)
        raise
    return ProbeResult(update, verified, events)


def _refuse_another_nodes_machine(nonces: ProbeNonces, workspace: WorkspaceRef, node: str, ppid: bytes) -> None:
    """A quote whose PPID is another node's current one comes from that machine, not from `node`."""
    with nonces.fleet.session() as s:
        other = s.scalars(select(m.Node.name).where(m.Node.ppid == ppid, m.Node.name != node)).first()
    if other is None:
        return
    try:
        nonces.fleet.node(workspace, other)
        named = f"node {other}"
    except NotFound:
        named = "another node"  # not this workspace's to see
    raise ProbeRefused(
        f"the quote comes from the machine recorded as {named} (PPID {hex0x(ppid)}), not from node {node}: "
        "run the probe with the name of the node its CVM runs on"
    )
