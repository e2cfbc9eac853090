"""A simulated dstack CVM: boots on a SimNode, records dstack's runtime events in RTMR3, answers GetQuote.

MRTD and RTMR0-2 depend only on the OS image hash (an image measures the same on every node), so a
devnet KMS can recompute them from `vm_config.os_image_hash` with `image_measurements`, as the real KMS
does from the downloaded image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from warden.errors import BadInput
from warden.identity.eventlog import IDENTITY_END, Event, replay, runtime_event
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki
from warden.tee.quote import build_tdx_quote, pad_report_data

APP_ID_SIZE = 20
HASH_SIZE = 32
INSTANCE_ID_SIZE = 20


@dataclass(frozen=True)
class ImageMeasurements:
    """The boot-time registers an OS image produces: MRTD (firmware) and RTMR0-2 (firmware config, kernel, cmdline)."""

    mr_td: bytes
    rt_mr0: bytes
    rt_mr1: bytes
    rt_mr2: bytes


def image_measurements(os_image_hash: bytes) -> ImageMeasurements:
    """What the devnet's simulated hardware measures for the image `os_image_hash` (the same on every node)."""

    def register(label: bytes) -> bytes:
        return hashlib.sha384(b"warden devnet image " + label + b"\x00" + os_image_hash).digest()

    return ImageMeasurements(register(b"mrtd"), register(b"rtmr0"), register(b"rtmr1"), register(b"rtmr2"))


def _sized(value: bytes, sizes: tuple[int, ...], what: str) -> bytes:
    if len(value) not in sizes:
        raise BadInput(f"{what} must be {' or '.join(map(str, sizes))} bytes, got {len(value)}")
    return bytes(value)


class SimCvm:
    """A booted CVM. Its identity events are fixed at boot; `emit_event` can only add events after system-ready."""

    def __init__(
        self,
        node: SimNode,
        pki: MockIntelPki,
        *,
        app_id: bytes,
        compose_hash: bytes,
        instance_id: bytes,
        os_image_hash: bytes,
        key_provider: bytes,
        storage_fs: str | None = None,
    ) -> None:
        self.node = node
        self.pki = pki
        self.app_id = _sized(app_id, (APP_ID_SIZE,), "app_id")
        self.compose_hash = _sized(compose_hash, (HASH_SIZE,), "compose_hash")
        # apps with no_instance_id boot with an empty instance id
        self.instance_id = _sized(instance_id, (0, INSTANCE_ID_SIZE), "instance_id")
        self.os_image_hash = _sized(os_image_hash, (HASH_SIZE,), "os_image_hash")
        self.key_provider = bytes(key_provider)
        self.storage_fs = storage_fs
        self.measurements = image_measurements(self.os_image_hash)
        # dstack's order: identity up to boot-mr-done, then what the KMS boot adds, then system-ready
        boot: list[tuple[str, bytes]] = [
            ("system-preparing", b""),
            ("app-id", self.app_id),
            ("compose-hash", self.compose_hash),
            ("instance-id", self.instance_id),
            ("boot-mr-done", b""),
            ("os-image-hash", self.os_image_hash),
            ("key-provider", self.key_provider),
        ]
        if storage_fs is not None:
            boot.append(("storage-fs", storage_fs.encode()))
        boot.append((IDENTITY_END, b""))
        self._events: list[Event] = [runtime_event(name, payload) for name, payload in boot]

    def event_log(self) -> list[Event]:
        """The RTMR3 events so far (a copy)."""
        return list(self._events)

    @property
    def rt_mr3(self) -> bytes:
        """RTMR3 as the hardware holds it: the replay of every event."""
        return replay(self._events, imr=3)

    def emit_event(self, name: str, payload: bytes) -> Event:
        """An application event after system-ready (it extends RTMR3 but cannot change the boot identity)."""
        if not name:
            raise BadInput("an event needs a name")
        event = runtime_event(name, bytes(payload))
        self._events.append(event)
        return event

    def quote(self, report_data: bytes) -> bytes:
        """A TDX quote from this CVM's node carrying `report_data` (≤ 64 bytes) and the current registers."""
        m = self.measurements
        return build_tdx_quote(
            self.node.pck(self.pki),
            self.pki,
            mr_td=m.mr_td,
            rt_mr0=m.rt_mr0,
            rt_mr1=m.rt_mr1,
            rt_mr2=m.rt_mr2,
            rt_mr3=self.rt_mr3,
            report_data=report_data,
        )

    def vm_config(self) -> str:
        """The host-supplied VM configuration JSON the guest reports (the KMS reads os_image_hash from it)."""
        return json.dumps({"spec_version": 1, "os_image_hash": self.os_image_hash.hex()}, separators=(",", ":"))

    def get_quote_response(self, report_data: bytes) -> dict[str, str]:
        """The body of dstack's guest-agent GetQuote answer: hex quote, event log and vm_config as JSON text."""
        padded = pad_report_data(report_data)
        return {
            "quote": self.quote(padded).hex(),
            "event_log": json.dumps([event.as_json() for event in self._events]),
            "report_data": padded.hex(),
            "vm_config": self.vm_config(),
        }
