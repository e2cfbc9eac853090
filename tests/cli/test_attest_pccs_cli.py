"""`warden attest inspect --pccs-url`: a devnet CVM's report verified with collateral fetched from the devnet's
PCCS over HTTP (the same dcap-qvl fetch production uses), against the devnet root only for devnet quotes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import assert_clean_error, warden
from tests.support.http_server import serve
from warden.devnet.fleet import Paths
from warden.tee.cvm import SimCvm
from warden.tee.node import SimNode
from warden.tee.pccs import create_pccs_app
from warden.tee.pki import MockIntelPki

APP_ID = bytes.fromhex("75537828f2ce51be7289709686a69cbfdbb714f1")


@pytest.fixture
def pki(isolated_env: Path) -> MockIntelPki:
    """The devnet's PKI, where `warden devnet up` keeps it ($WARDEN_HOME/pki)."""
    return MockIntelPki.load_or_create(Paths(isolated_env).pki)


@pytest.fixture
def pccs(pki: MockIntelPki) -> Iterator[str]:
    with serve(create_pccs_app(pki)) as url:
        yield url


@pytest.fixture
def node(tmp_path: Path) -> SimNode:
    return SimNode.load_or_create(tmp_path / "prod6", "prod6", "us-east")


@pytest.fixture
def report(node: SimNode, pki: MockIntelPki, tmp_path: Path) -> Path:
    """A devnet CVM's attestation report (quote + event log), as a file an operator holds."""
    cvm = SimCvm(
        node, pki, app_id=APP_ID, compose_hash=hashlib.sha256(b"{}").digest(), instance_id=b"\x07" * 20,
        os_image_hash=b"\x14" * 32, key_provider=b'{"name":"kms","id":"3059"}', storage_fs="zfs",
    )  # fmt: skip
    path = tmp_path / "report.json"
    path.write_text(json.dumps(cvm.get_quote_response(b"\x05" * 32)))
    return path


def test_inspect_verifies_a_devnet_report_with_collateral_from_the_pccs(pccs: str, report: Path, node: SimNode) -> None:
    run = warden("attest", "inspect", "--quote", str(report), "--pccs-url", pccs, "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["verified"] is True and data["tcb_status"] == "UpToDate" and data["trust_root"] == "devnet"
    assert data["device_id"] == "0x" + node.device_id.hex() and data["rtmr3_replayed"] is True
    assert data["boot_info"]["appId"] == APP_ID.hex()
    assert "devnet's mock Intel root" in run.stderr
    human = warden("attest", "inspect", "--quote", str(report), "--pccs-url", pccs)
    assert human.exit_code == 0 and "yes, TCB UpToDate (root: devnet)" in human.stdout


def test_the_environment_names_the_pccs_and_a_second_run_needs_no_fetch(pki: MockIntelPki, report: Path) -> None:
    with serve(create_pccs_app(pki)) as url:
        first = warden("attest", "inspect", "--quote", str(report), "--json", env={"WARDEN_PCCS_URL": url})
        assert first.exit_code == 0 and first.json()["verified"] is True, first.stderr
    # the PCCS is gone: the collateral kept in the user cache dir still serves this platform
    again = warden("attest", "inspect", "--quote", str(report), "--json", env={"WARDEN_PCCS_URL": url})
    assert again.exit_code == 0 and again.json()["verified"] is True, again.stderr


def test_a_root_given_on_the_command_line_is_the_one_trusted(pccs: str, pki: MockIntelPki, report: Path) -> None:
    root = report.parent / "root.pem"
    root.write_bytes(pki.root_ca_pem)
    run = warden("attest", "inspect", "--quote", str(report), "--pccs-url", pccs, "--root-ca", str(root), "--json")
    assert run.exit_code == 0 and run.json()["trust_root"] == str(root), run.stderr


def test_a_quote_from_another_devnet_is_checked_against_intels_root(
    pccs: str, pki: MockIntelPki, tmp_path: Path
) -> None:
    elsewhere = MockIntelPki.create()  # another machine's devnet: its root is not this one's
    quote = tmp_path / "foreign.quote"
    quote.write_bytes(SimNode.load_or_create(tmp_path / "other", "other", "eu").host_quote(elsewhere))
    with serve(create_pccs_app(elsewhere)) as url:
        run = warden("attest", "inspect", "--quote", str(quote), "--pccs-url", url)
    assert_clean_error(run, 2, "does not verify")


def test_an_unreachable_pccs_is_undecided(dead_url: str, report: Path) -> None:
    run = warden("attest", "inspect", "--quote", str(report), "--pccs-url", dead_url, "--json")
    assert_clean_error(run, 3, f"no collateral from the PCCS {dead_url}")


def test_a_pccs_without_the_platform_is_undecided(pki: MockIntelPki, report: Path) -> None:
    with serve(create_pccs_app(pki, fmspcs=[bytes(6)])) as url:
        run = warden("attest", "inspect", "--quote", str(report), "--pccs-url", url)
    assert_clean_error(run, 3, "HTTP 404")


@pytest.mark.parametrize("url", ["pccs.example.com", "ftp://pccs.example.com", "http://:8081"])
def test_a_bad_pccs_url_is_bad_input(url: str, report: Path) -> None:
    assert_clean_error(warden("attest", "inspect", "--quote", str(report), "--pccs-url", url), 2, "invalid PCCS URL")


def test_a_collateral_file_and_a_pccs_contradict(pccs: str, report: Path, tmp_path: Path) -> None:
    collateral = tmp_path / "collateral.json"
    collateral.write_text("{}")
    run = warden("attest", "inspect", "--quote", str(report), "--collateral", str(collateral), "--pccs-url", pccs)
    assert_clean_error(run, 2, "--collateral or --pccs-url, not both")
