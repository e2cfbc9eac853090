"""A simulated TDX host: a name, a region and a platform identity (PPID) that survives devnet restarts.

Stored in its own directory (mode 0700):
    node.json  name, region, PPID (hex), TCB state, earlier PPIDs
    pck.pem    the PCK leaf certificate issued for the current PPID
    pck.key    its private key (0600)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from warden.errors import BadInput
from warden.files import private_dir, write_file, write_secret_file
from warden.hexutil import parse_hex
from warden.identity.device import PPID_BYTES
from warden.tee.pki import TCB_SVNS, MockIntelPki, PckCredential, PkiError, TcbState, qe_id
from warden.tee.quote import MR_SIZE, build_tdx_quote

PPID_SIZE = PPID_BYTES
NODE_FORMAT = 1


@dataclass
class SimNode:
    """One physical machine of the devnet. `device_id` is what a KMS allow-list names it by."""

    directory: Path
    name: str
    region: str
    ppid: bytes
    tcb: TcbState = "UpToDate"
    previous_ppids: list[bytes] = field(default_factory=list)
    _pck: PckCredential | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load_or_create(cls, directory: Path, name: str, region: str) -> SimNode:
        """Load the node stored in `directory`, or create one with a random PPID.

        A stored node keeps its PPID; a different `region` is taken as a move and stored.
        """
        directory = Path(directory)
        if not name:
            raise BadInput("a node needs a name")
        path = directory / "node.json"
        if not path.exists():
            node = cls(directory, name, region, os.urandom(PPID_SIZE))
            node.save()
            return node
        node = cls._read(path)
        if node.name != name:
            raise BadInput(f"{directory} holds node {node.name!r}, not {name!r}")
        if node.region != region:
            node.region = region
            node.save()
        return node

    @classmethod
    def _read(cls, path: Path) -> SimNode:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data.get("format") != NODE_FORMAT:
                raise BadInput(f"{path}: unknown format {data.get('format')!r}")
            ppid = parse_hex(str(data["ppid"]), f"PPID in {path}", PPID_SIZE)
            tcb = data.get("tcb", "UpToDate")
            previous = [parse_hex(str(p), f"former PPID in {path}", PPID_SIZE) for p in data.get("previous_ppids", [])]
            name, region = str(data["name"]), str(data["region"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"cannot read the simulated node in {path}: {exc}") from None
        if tcb not in get_args(TcbState):
            raise BadInput(f"{path}: tcb must be one of {get_args(TcbState)}")
        return cls(path.parent, name, region, ppid, cast(TcbState, tcb), previous)

    def save(self) -> None:
        """Write node.json (the PCK files are written when the PCK is issued)."""
        private_dir(self.directory)
        data = {
            "format": NODE_FORMAT,
            "name": self.name,
            "region": self.region,
            "ppid": self.ppid.hex(),
            "tcb": self.tcb,
            "previous_ppids": [p.hex() for p in self.previous_ppids],
        }
        write_file(self.directory / "node.json", json.dumps(data, indent=2) + "\n")

    @property
    def device_id(self) -> bytes:
        """dstack ≥ 0.5.6: sha256(PPID)."""
        return hashlib.sha256(self.ppid).digest()

    @property
    def legacy_device_id(self) -> bytes:
        """dstack ≤ 0.5.5: sha256 of the quote header's user_data (QE id ‖ 4 zero bytes)."""
        return hashlib.sha256(qe_id(self.ppid) + bytes(4)).digest()

    def rotate_ppid(self) -> bytes:
        """Model a BIOS or microcode update that gives the platform a new PPID, hence a new PCK and device id."""
        self.previous_ppids.append(self.ppid)
        self.ppid = os.urandom(PPID_SIZE)
        self._forget_pck()
        self.save()
        return self.ppid

    def host_quote(self, pki: MockIntelPki, report_data: bytes = b"") -> bytes:
        """A quote from the node's own agent (no CVM measurements): what it posts to the control plane so
        the control plane learns the node's current PPID, hence device id, from verified attestation."""
        zero = bytes(MR_SIZE)
        return build_tdx_quote(
            self.pck(pki), pki, mr_td=zero, rt_mr0=zero, rt_mr1=zero, rt_mr2=zero, rt_mr3=zero, report_data=report_data
        )

    def set_tcb(self, tcb: TcbState) -> None:
        """Put the platform at an UpToDate or OutOfDate TCB level (its next PCK certificate carries those SVNs)."""
        if tcb not in get_args(TcbState):
            raise BadInput(f"tcb must be one of {get_args(TcbState)}, got {tcb!r}")
        if tcb != self.tcb:
            self.tcb = tcb
            self._forget_pck()
            self.save()

    def pck(self, pki: MockIntelPki) -> PckCredential:
        """This platform's PCK credential: the stored one if it still fits, else a newly issued (and stored) one."""
        if self._pck is not None and self._fits(self._pck, pki):
            return self._pck
        stored = self._load_pck()
        if stored is not None and self._fits(stored, pki):
            self._pck = stored
            return stored
        cpu_svn, pce_svn = TCB_SVNS[self.tcb]
        issued = pki.issue_pck(self.ppid, cpu_svn=cpu_svn, pce_svn=pce_svn)
        private_dir(self.directory)
        write_secret_file(self.directory / "pck.key", issued.key_pem)
        write_file(self.directory / "pck.pem", issued.cert_pem)
        self._pck = issued
        return issued

    def _fits(self, pck: PckCredential, pki: MockIntelPki) -> bool:
        # a stored PCK is stale after a PPID or TCB change, or when the devnet PKI was recreated
        cpu_svn, pce_svn = TCB_SVNS[self.tcb]
        return pck.ppid == self.ppid and (pck.cpu_svn, pck.pce_svn) == (cpu_svn, pce_svn) and pki.issued_pck(pck)

    def _load_pck(self) -> PckCredential | None:
        cert_path, key_path = self.directory / "pck.pem", self.directory / "pck.key"
        if not (cert_path.exists() and key_path.exists()):
            return None
        try:
            return PckCredential.from_pem(cert_path.read_bytes(), key_path.read_bytes())
        except (OSError, ValueError, PkiError):
            return None  # unreadable: issue a new one rather than refuse to boot

    def _forget_pck(self) -> None:
        self._pck = None
        for stale in ("pck.pem", "pck.key"):
            (self.directory / stale).unlink(missing_ok=True)
