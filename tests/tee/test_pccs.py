"""The devnet PCCS over real HTTP, and collateral fetched from it by dcap-qvl's own `get_collateral`: it verifies
devnet quotes under the devnet root, and one fetch serves every quote of a platform until its `nextUpdate`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import dcap_qvl
import httpx
import pytest

from tests.support.http_server import serve
from warden.errors import EXIT_BAD_INPUT, EXIT_UNDECIDED, BadInput
from warden.identity.quote import QuoteError, verify_quote
from warden.kms.attestation_policy import AttestationPolicy
from warden.tee.collateral_source import CollateralUnavailable, PccsCollateral, next_update, parse_pccs_url
from warden.tee.node import SimNode
from warden.tee.pccs import create_pccs_app
from warden.tee.pki import DEVNET_FMSPC, MockIntelPki


@pytest.fixture(scope="module")
def pki() -> MockIntelPki:
    return MockIntelPki.create()


@pytest.fixture(scope="module")
def pccs(pki: MockIntelPki) -> Iterator[str]:
    with serve(create_pccs_app(pki)) as url:
        yield url


def host_quote(tmp_path: Path, pki: MockIntelPki, name: str) -> tuple[SimNode, bytes]:
    node = SimNode.load_or_create(tmp_path / name, name, "us-east")
    return node, node.host_quote(pki)


async def _get_collateral(url: str, quote: bytes) -> Any:
    return await dcap_qvl.get_collateral(url, quote)


def test_dcap_qvl_fetches_collateral_that_verifies_a_devnet_quote(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    node, quote = host_quote(tmp_path, pki, "prod5")
    fetched = asyncio.run(_get_collateral(pccs, quote))
    verified = verify_quote(quote, fetched, int(time.time()), pki.root_ca_der)
    assert verified.tcb_status == "UpToDate" and verified.ppid == node.ppid
    with pytest.raises(QuoteError, match="does not verify"):  # Intel's root never accepts the devnet's
        verify_quote(quote, fetched, int(time.time()))


def test_the_api_answers_as_a_pccs(pccs: str, pki: MockIntelPki) -> None:
    fmspc = DEVNET_FMSPC.hex().upper()
    tcb = httpx.get(f"{pccs}/tdx/certification/v4/tcb", params={"fmspc": fmspc.lower()})
    assert tcb.status_code == 200 and tcb.json()["tcbInfo"]["fmspc"] == fmspc
    assert pki.root_ca_pem.decode() in unquote(tcb.headers["TCB-Info-Issuer-Chain"])
    identity = httpx.get(f"{pccs}/tdx/certification/v4/qe/identity", params={"update": "standard"})
    assert identity.json()["enclaveIdentity"]["id"] == "TD_QE" and identity.headers["SGX-Enclave-Identity-Issuer-Chain"]
    crl = httpx.get(f"{pccs}/sgx/certification/v4/pckcrl", params={"ca": "platform", "encoding": "der"})
    assert crl.content[:1] == b"\x30" and pki.platform_ca_pem.decode() in unquote(
        crl.headers["SGX-PCK-CRL-Issuer-Chain"]
    )
    assert bytes.fromhex(httpx.get(f"{pccs}/sgx/certification/v4/rootcacrl").text)[:1] == b"\x30"


def test_unknown_or_malformed_requests_are_refused_like_a_pccs(pccs: str) -> None:
    unknown = httpx.get(f"{pccs}/tdx/certification/v4/tcb", params={"fmspc": "00906ED50000"})
    assert unknown.status_code == 404 and "00906ED50000" in unknown.json()["error"]
    assert httpx.get(f"{pccs}/tdx/certification/v4/tcb", params={"fmspc": "xyz"}).status_code == 400
    assert httpx.get(f"{pccs}/sgx/certification/v4/pckcrl", params={"ca": "nope"}).status_code == 400


def test_one_fetch_serves_every_quote_of_a_platform(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    source = PccsCollateral(pccs)
    policy = AttestationPolicy(collateral=source, root_ca_der=pki.root_ca_der)
    for name in ("prod5", "prod6", "prod9"):
        node, quote = host_quote(tmp_path, pki, name)
        assert policy.verify(quote).ppid == node.ppid  # each quote's own PCK chain, not the first one's
    assert source.fetches == 1


def test_concurrent_quotes_of_a_platform_share_one_fetch(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    source = PccsCollateral(pccs)
    quotes = [host_quote(tmp_path, pki, f"node{i}")[1] for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # as a KMS's request threads ask at once
        fetched = list(pool.map(source, quotes * 2))
    assert source.fetches == 1 and all(f is fetched[0] for f in fetched)


def test_collateral_is_fetched_again_after_its_next_update(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    now = [time.time()]
    source = PccsCollateral(pccs, clock=lambda: now[0])
    _, quote = host_quote(tmp_path, pki, "prod5")
    expires = next_update(json.dumps(json.loads(str(source(quote).to_json()))))
    assert expires is not None and expires > now[0]
    now[0] = expires - 1
    source(quote)
    assert source.fetches == 1
    now[0] = expires
    source(quote)
    assert source.fetches == 2


def test_the_cache_file_spares_the_next_run_a_fetch(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "pccs-collateral.json"
    _, quote = host_quote(tmp_path, pki, "prod5")
    PccsCollateral(pccs, cache_file=cache)(quote)
    later = PccsCollateral(pccs, cache_file=cache)
    assert verify_quote(quote, later(quote), int(time.time()), pki.root_ca_der).tcb_status == "UpToDate"
    assert later.fetches == 0
    other = PccsCollateral(pccs + "/", cache_file=cache)
    other(quote)
    assert other.fetches == 0  # the same PCCS, however its URL is spelled
    cache.write_text("{not json")
    damaged = PccsCollateral(pccs, cache_file=cache)
    damaged(quote)
    assert damaged.fetches == 1 and json.loads(cache.read_text())["format"] == 1


def test_a_fetch_works_inside_a_running_event_loop(pccs: str, pki: MockIntelPki, tmp_path: Path) -> None:
    source = PccsCollateral(pccs)
    _, quote = host_quote(tmp_path, pki, "prod5")

    async def handler() -> Any:  # as an async request handler of the KMS calls its policy
        return source(quote)

    fetched = asyncio.run(handler())
    assert verify_quote(quote, fetched, int(time.time()), pki.root_ca_der).ppid


def test_an_unreachable_pccs_leaves_the_quote_undecided(dead_url: str, pki: MockIntelPki, tmp_path: Path) -> None:
    _, quote = host_quote(tmp_path, pki, "prod5")
    policy = AttestationPolicy(collateral=PccsCollateral(dead_url), root_ca_der=pki.root_ca_der)
    with pytest.raises(CollateralUnavailable, match=f"no collateral from the PCCS {dead_url}") as raised:
        policy.verify(quote)
    assert raised.value.exit_code == EXIT_UNDECIDED


def test_a_pccs_without_the_platform_leaves_the_quote_undecided(pki: MockIntelPki, tmp_path: Path) -> None:
    _, quote = host_quote(tmp_path, pki, "prod5")
    with serve(create_pccs_app(pki, fmspcs=[bytes(6)])) as url:
        source = PccsCollateral(url)
        with pytest.raises(CollateralUnavailable, match="HTTP 404"):
            source(quote)
        with pytest.raises(CollateralUnavailable):  # a failure is never cached as an answer
            source(quote)
    assert source.fetches == 2


def test_garbage_is_bad_input_without_a_fetch(pccs: str) -> None:
    source = PccsCollateral(pccs)
    with pytest.raises(QuoteError, match="not a valid quote"):
        source(b"\x04\x00garbage")
    assert source.fetches == 0


@pytest.mark.parametrize("url", ["", "pccs.example.com", "ftp://pccs.example.com", "http://", "http://h:port",
                                 "https://pccs.example.com/?x=1"])  # fmt: skip
def test_a_bad_pccs_url_is_bad_input(url: str) -> None:
    with pytest.raises(BadInput, match="invalid PCCS URL") as raised:
        parse_pccs_url(url)
    assert raised.value.exit_code == EXIT_BAD_INPUT
    assert parse_pccs_url("https://pccs.phala.network/") == "https://pccs.phala.network"
