"""Simulated nodes: a PPID that persists, rotates on a hardware update, and names the device."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path

import dcap_qvl
import pytest

from warden.errors import BadInput
from warden.tee.collateral import collateral
from warden.tee.node import SimNode
from warden.tee.pki import MockIntelPki
from warden.tee.quote import build_tdx_quote

Z48 = bytes(48)


def _quote(node: SimNode, pki: MockIntelPki) -> bytes:
    return build_tdx_quote(
        node.pck(pki), pki, mr_td=Z48, rt_mr0=Z48, rt_mr1=Z48, rt_mr2=Z48, rt_mr3=Z48, report_data=b"node"
    )


def _verified_ppid(node: SimNode, pki: MockIntelPki) -> bytes:
    report = dcap_qvl.verify_with_root_ca(_quote(node, pki), collateral(pki), pki.root_ca_der, int(time.time()))
    assert report.status == ("UpToDate" if node.tcb == "UpToDate" else "OutOfDate")
    return bytes(report.ppid)


@pytest.fixture
def pki(tmp_path: Path) -> MockIntelPki:
    return MockIntelPki.load_or_create(tmp_path / "pki")


def test_create_and_reload(tmp_path: Path) -> None:
    node = SimNode.load_or_create(tmp_path / "n1", "n1", "eu-west")
    assert len(node.ppid) == 16
    assert node.device_id == hashlib.sha256(node.ppid).digest()
    again = SimNode.load_or_create(tmp_path / "n1", "n1", "eu-west")
    assert (again.ppid, again.name, again.region) == (node.ppid, "n1", "eu-west")
    assert stat.S_IMODE((tmp_path / "n1").stat().st_mode) == 0o700
    stored = json.loads((tmp_path / "n1" / "node.json").read_text())
    assert stored["ppid"] == node.ppid.hex()


def test_two_nodes_have_different_ppids(tmp_path: Path) -> None:
    a = SimNode.load_or_create(tmp_path / "a", "a", "r")
    b = SimNode.load_or_create(tmp_path / "b", "b", "r")
    assert a.ppid != b.ppid and a.device_id != b.device_id


def test_wrong_name_is_refused_and_region_moves(tmp_path: Path) -> None:
    SimNode.load_or_create(tmp_path / "n", "n", "us-east")
    with pytest.raises(BadInput, match="holds node"):
        SimNode.load_or_create(tmp_path / "n", "other", "us-east")
    moved = SimNode.load_or_create(tmp_path / "n", "n", "ap-south")
    assert SimNode.load_or_create(tmp_path / "n", "n", "ap-south").region == moved.region == "ap-south"


def test_quote_carries_the_node_ppid(tmp_path: Path, pki: MockIntelPki) -> None:
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    assert _verified_ppid(node, pki) == node.ppid
    header = dcap_qvl.parse_quote(_quote(node, pki)).header
    assert node.legacy_device_id == hashlib.sha256(bytes(header.user_data)).digest()


def test_rotate_ppid_changes_device_and_persists(tmp_path: Path, pki: MockIntelPki) -> None:
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    old_ppid, old_device, old_legacy = node.ppid, node.device_id, node.legacy_device_id
    old_serial = node.pck(pki).certificate.serial_number
    new_ppid = node.rotate_ppid()
    assert new_ppid == node.ppid != old_ppid
    assert node.device_id != old_device and node.legacy_device_id != old_legacy
    assert node.pck(pki).certificate.serial_number != old_serial
    assert _verified_ppid(node, pki) == new_ppid
    reloaded = SimNode.load_or_create(tmp_path / "n", "n", "r")
    assert reloaded.ppid == new_ppid and reloaded.previous_ppids == [old_ppid]
    assert _verified_ppid(reloaded, pki) == new_ppid


def test_pck_is_stored_and_reused(tmp_path: Path, pki: MockIntelPki) -> None:
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    serial = node.pck(pki).certificate.serial_number
    assert stat.S_IMODE((tmp_path / "n" / "pck.key").stat().st_mode) == 0o600
    reloaded = SimNode.load_or_create(tmp_path / "n", "n", "r")
    assert reloaded.pck(pki).certificate.serial_number == serial


def test_restart_keeps_everything_verifying(tmp_path: Path) -> None:
    pki = MockIntelPki.load_or_create(tmp_path / "pki")
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    old_quote = _quote(node, pki)
    pki2 = MockIntelPki.load_or_create(tmp_path / "pki")
    node2 = SimNode.load_or_create(tmp_path / "n", "n", "r")
    assert pki2.root_ca_der == pki.root_ca_der and node2.ppid == node.ppid
    assert _verified_ppid(node2, pki2) == node.ppid
    # a quote made before the restart still verifies with the collateral after it
    report = dcap_qvl.verify_with_root_ca(old_quote, collateral(pki2), pki2.root_ca_der, int(time.time()))
    assert bytes(report.ppid) == node.ppid


def test_new_pki_reissues_the_pck(tmp_path: Path, pki: MockIntelPki) -> None:
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    node.pck(pki)
    fresh = MockIntelPki.create()
    assert _verified_ppid(SimNode.load_or_create(tmp_path / "n", "n", "r"), fresh) == node.ppid


def test_out_of_date_node(tmp_path: Path, pki: MockIntelPki) -> None:
    node = SimNode.load_or_create(tmp_path / "n", "n", "r")
    node.set_tcb("OutOfDate")
    assert SimNode.load_or_create(tmp_path / "n", "n", "r").tcb == "OutOfDate"
    assert _verified_ppid(node, pki) == node.ppid  # status checked inside
    node.set_tcb("UpToDate")
    assert _verified_ppid(node, pki) == node.ppid
    with pytest.raises(BadInput):
        node.set_tcb("Revoked")  # type: ignore[arg-type]


def test_corrupt_node_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "node.json").write_text('{"format": 1, "name": "n", "region": "r", "ppid": "abcd"}')
    with pytest.raises(BadInput):
        SimNode.load_or_create(tmp_path / "n", "n", "r")
