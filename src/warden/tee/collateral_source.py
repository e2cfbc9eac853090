"""Quote collateral from a PCCS, fetched with dcap-qvl's own `get_collateral` and kept until it expires.

One fetch serves every quote of a platform: collateral is cached per (PCCS, TEE, FMSPC, PCK CA type) until the
earliest `nextUpdate` among its TCB info, QE identity and CRLs, in memory and, when a cache file is given, on
disk (so repeated CLI runs and a service's workers share it). The cached collateral never carries a quote's own
PCK chain (dcap-qvl would prefer it to the chain inside the next quote). A fetch that fails is `Undecided`:
neither a yes nor a no, so a KMS denies and `attest inspect` exits 3.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dcap_qvl
from cryptography import x509

from warden.errors import BadInput, Undecided
from warden.files import write_file
from warden.identity.quote import parse_collateral, parse_quote
from warden.paths import cache_dir

DEFAULT_PCCS_URL: str = dcap_qvl.PHALA_PCCS_URL
CACHE_FILE_NAME = "pccs-collateral.json"
CACHE_FORMAT = 1
FETCH_TIMEOUT = 30.0  # seconds; dcap-qvl's own limit is three minutes, too long for a key request to wait


class CollateralUnavailable(Undecided):
    """The PCCS did not give collateral for a quote, so the quote could be neither accepted nor refused."""


def parse_pccs_url(text: str) -> str:
    """A PCCS base URL (http or https, with a host), without a trailing slash; anything else is bad input."""
    url = text.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.query or parts.fragment)
    except ValueError:
        valid = False
    if not valid:
        raise BadInput(f"invalid PCCS URL {text!r}: use http(s)://HOST[:PORT][/PATH], e.g. {DEFAULT_PCCS_URL}")
    return url


def default_cache_file() -> Path:
    """Where fetched collateral is kept between runs: the user cache dir (nothing in it is needed to be correct)."""
    return cache_dir() / CACHE_FILE_NAME


@dataclass(frozen=True)
class _Cached:
    collateral: Any  # dcap_qvl.QuoteCollateralV3
    text: str  # its to_json form, for the cache file
    next_update: float  # unix seconds: the earliest nextUpdate of its parts


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def next_update(collateral_json: str) -> float | None:
    """The earliest `nextUpdate` of the TCB info, the QE identity and both CRLs (None when one is unreadable)."""
    try:
        data = json.loads(collateral_json)
        times = [_seconds(json.loads(data[part])["nextUpdate"]) for part in ("tcb_info", "qe_identity")]
        for crl in ("root_ca_crl", "pck_crl"):
            moment = x509.load_der_x509_crl(bytes.fromhex(data[crl])).next_update_utc
            if moment is not None:
                times.append(moment.timestamp())
    except (ValueError, KeyError, TypeError):
        return None
    return min(times)


def _run_async(fetch: Callable[[], Any]) -> Any:
    """Run the coroutine `fetch()` makes to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fetch())
    # an event loop runs on this thread (an async request handler): it cannot be re-entered, so use a thread
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pccs-fetch") as pool:
        return pool.submit(lambda: asyncio.run(fetch())).result()


class PccsCollateral:
    """`AttestationPolicy.collateral` backed by a PCCS: collateral for a raw quote, fetched at most once per
    platform until it expires. `fetches` counts the fetches made (a cache hit makes none)."""

    def __init__(
        self,
        pccs_url: str = DEFAULT_PCCS_URL,
        *,
        cache_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.pccs_url = parse_pccs_url(pccs_url)
        self.cache_file = cache_file
        self.clock = clock
        self.timeout = timeout
        self.fetches = 0
        self._memory: dict[str, _Cached] = {}
        self._guard = threading.Lock()
        self._platform_locks: dict[str, threading.Lock] = {}  # concurrent quotes of a platform wait for one fetch

    def __call__(self, raw_quote: bytes) -> Any:
        """Collateral for `raw_quote`: cached while fresh, else fetched (CollateralUnavailable when that fails)."""
        key = self._platform_key(raw_quote)
        if key is None:  # no PCK chain in the quote: the collateral is the quote's own, never shared
            return self._fetch(raw_quote, shared=False).collateral
        with self._guard:
            lock = self._platform_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._fresh(key)
            if cached is None:
                cached = self._fetch(raw_quote)
                if cached.next_update > self.clock():
                    self._memory[key] = cached
                    self._save(key, cached)
            return cached.collateral

    def _platform_key(self, raw_quote: bytes) -> str | None:
        try:
            parsed = dcap_qvl.parse_quote(raw_quote)
        except ValueError:
            parse_quote(raw_quote)  # garbage is bad input (QuoteError says why), not an unreachable PCCS
            raise
        try:
            platform = f"{parsed.quote_type()}/{parsed.fmspc()}/{parsed.ca()}"
        except ValueError:
            return None
        return f"{self.pccs_url} {platform.upper()}"

    def _fresh(self, key: str) -> _Cached | None:
        now = self.clock()
        cached = self._memory.get(key)
        if cached is None or cached.next_update <= now:
            cached = self._load(key)
            if cached is None or cached.next_update <= now:
                return None
            self._memory[key] = cached
        return cached

    def _fetch(self, raw_quote: bytes, *, shared: bool = True) -> _Cached:
        async def fetch() -> Any:
            return await asyncio.wait_for(dcap_qvl.get_collateral(self.pccs_url, raw_quote), self.timeout)

        self.fetches += 1
        try:
            fetched = _run_async(fetch)
        except TimeoutError:
            raise CollateralUnavailable(
                f"no collateral: the PCCS {self.pccs_url} did not answer within {self.timeout:g}s"
            ) from None
        except (ValueError, RuntimeError, OSError) as exc:
            reason = (str(exc).removeprefix("Failed to get collateral: ").splitlines() or [type(exc).__name__])[0]
            raise CollateralUnavailable(f"no collateral from the PCCS {self.pccs_url}: {reason}") from None
        data = json.loads(str(fetched.to_json()))
        if shared:
            data.pop("pck_certificate_chain", None)  # this quote's chain: the next quote brings its own
        text = json.dumps(data)
        expires = next_update(text)
        return _Cached(parse_collateral(text), text, expires if expires is not None else 0.0)

    # the cache file: {"format": 1, "entries": {key: {"next_update": seconds, "collateral": json}}}

    def _read_entries(self) -> dict[str, Any]:
        if self.cache_file is None:
            return {}
        with suppress(OSError, ValueError):
            data = json.loads(self.cache_file.read_text())
            if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("entries"), dict):
                entries: dict[str, Any] = data["entries"]
                return entries
        return {}  # missing or unreadable: refetch, the file holds nothing needed to be correct

    def _load(self, key: str) -> _Cached | None:
        entry = self._read_entries().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("collateral"), str):
            return None
        text = entry["collateral"]
        expires = next_update(text)  # from the collateral itself, not from what the file claims
        if expires is None:
            return None
        try:
            return _Cached(parse_collateral(text), text, expires)
        except BadInput:
            return None

    def _save(self, key: str, cached: _Cached) -> None:
        if self.cache_file is None:
            return
        now = self.clock()
        entries = {
            k: v for k, v in self._read_entries().items() if isinstance(v, dict) and v.get("next_update", 0) > now
        }
        entries[key] = {"next_update": cached.next_update, "collateral": cached.text}
        with suppress(OSError):  # a read-only cache dir costs a refetch next run, nothing more
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_file(self.cache_file, json.dumps({"format": CACHE_FORMAT, "entries": entries}))
