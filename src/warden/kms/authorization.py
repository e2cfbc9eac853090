"""Boot authorization against a DstackKms contract: may this app (or this KMS) get its keys?

Every decision is one `eth_call` of `DstackKms.isAppAllowed` / `isKmsAllowed`, read fresh each time:
nothing is cached, so removing a device or a compose hash on chain takes effect on the next request.
`gatewayAppId` travels in the same JSON-RPC batch as the check, so the answer and the gateway id come
from one round trip and can never be older than the decision.

The authorizer fails closed: an unreachable or slow RPC, an error answer, a revert or an answer that does
not decode is a denial ("authorization backend unavailable: …"), never an exception and never an allow.
The first failure of an outage is logged as a warning, the rest at debug level until the chain answers
again (a service denying hundreds of requests a second must not write hundreds of log lines a second).

Given a `LazyKmsRegistry`, the authorizer works before the chain has ever answered (it denies) and binds
the DstackKms on the first request that reaches the chain.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from eth_utils import keccak

from warden.chain.app import BootCheck
from warden.chain.connection import ContractReverted
from warden.chain.kms import KmsRegistry, LazyKmsRegistry
from warden.errors import OperationFailed, WardenError
from warden.identity.bootinfo import BootInfo

log = logging.getLogger("warden.kms.authorization")

BACKEND_UNAVAILABLE = "authorization backend unavailable"
INVALID_REQUEST = "invalid authorization request"

CheckKind = Literal["app", "kms"]
_T = TypeVar("_T")

# byte sizes of the contract's AppBootInfo fields (addresses and bytes32)
ADDRESS_FIELDS = {"app_id": 20, "instance_id": 20}
HASH_FIELDS = {"compose_hash": 32, "device_id": 32, "mr_aggregated": 32, "mr_system": 32, "os_image_hash": 32}


@dataclass(frozen=True)
class Decision:
    """The answer for one boot: `reason` is the contract's own words ("" when allowed).

    `unavailable` marks a denial the chain did not make (the backend failed and the check failed closed).
    """

    allowed: bool
    reason: str
    gateway_app_id: str
    unavailable: bool = False

    @classmethod
    def backend_failure(cls, cause: str) -> Decision:
        return cls(False, f"{BACKEND_UNAVAILABLE}: {cause}", "", unavailable=True)


@dataclass(frozen=True)
class BackendInfo:
    """What `GET /` of the webhook reports about the chain behind it."""

    kms_contract_addr: str
    eth_rpc_url: str
    gateway_app_id: str
    chain_id: int
    app_implementation: str


class InvalidBootInfo(ValueError):
    """A BootInfo field does not fit the contract's struct (too long for an address or a bytes32)."""


class BackendUnavailable(OperationFailed):
    """The chain could not be read in time (only raised by `Authorizer.info`)."""


def public_endpoint(url: str) -> str:
    """Scheme, host and port of an RPC URL: no user info, path or query (they often hold an API key)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "configured"
    if not parts.scheme or not host:
        return "configured"
    return f"{parts.scheme}://{host}"


def boot_check(boot: BootInfo) -> BootCheck:
    """The contract's AppBootInfo tuple: short values left-padded with zeros, as dstack's auth-eth does.

    An empty instance id becomes the zero address. A value longer than its slot raises InvalidBootInfo.
    """
    padded: dict[str, bytes] = {}
    for name, size in {**ADDRESS_FIELDS, **HASH_FIELDS}.items():
        value = getattr(boot, name)
        if not isinstance(value, bytes):
            raise InvalidBootInfo(f"{name} is not bytes")
        if len(value) > size:
            raise InvalidBootInfo(f"{name} is {len(value)} bytes, at most {size} allowed")
        padded[name] = value.rjust(size, b"\0")
    if not isinstance(boot.tcb_status, str) or not all(isinstance(a, str) for a in boot.advisory_ids):
        raise InvalidBootInfo("tcb_status and advisory_ids must be text")
    return BootCheck(
        app_id=checksum_address(padded["app_id"]),
        compose_hash=padded["compose_hash"],
        device_id=padded["device_id"],
        instance_id=checksum_address(padded["instance_id"]),
        mr_aggregated=padded["mr_aggregated"],
        mr_system=padded["mr_system"],
        os_image_hash=padded["os_image_hash"],
        tcb_status=boot.tcb_status,
        advisory_ids=tuple(boot.advisory_ids),
    )


def checksum_address(address: bytes) -> str:
    """EIP-55 form of a 20-byte address (what eth_utils' `to_checksum_address` gives, without its validation
    layers: the bytes are already checked; this runs twice per key request)."""
    digits = address.hex()
    nibbles = keccak(digits.encode()).hex()
    return "0x" + "".join(d.upper() if n > "7" else d for d, n in zip(digits, nibbles, strict=False))


class Authorizer:
    """Answers boot authorization requests from one DstackKms; safe to share between threads.

    `timeout` bounds each answer, whatever the RPC client's own timeouts and retries: a check still
    running after it is reported as a backend failure. At most `max_pending` checks talk to the chain at
    once; more wait their turn within the same deadline.
    """

    def __init__(self, registry: KmsRegistry | LazyKmsRegistry, timeout: float = 5.0, *, max_pending: int = 8) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._source = registry
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=max_pending, thread_name_prefix="warden-authz")
        self._closed = threading.Event()
        self._outage_lock = threading.Lock()
        self._outage: str | None = None  # the cause of the current run of failures, None while answering

    @property
    def registry(self) -> KmsRegistry:
        """The DstackKms asked; a lazy one is opened here (raising while its chain does not answer)."""
        return self._source if isinstance(self._source, KmsRegistry) else self._source.get()

    @property
    def kms_address(self) -> str:
        """The DstackKms address, known even before its chain has answered."""
        return self._source.address

    @property
    def chain_id(self) -> int | None:
        """The chain id, or None while a lazily opened chain has not answered yet."""
        return self._source.chain.chain_id if isinstance(self._source, KmsRegistry) else self._source.chain_id

    @property
    def rpc_endpoint(self) -> str:
        """Scheme, host and port of the RPC in use (never its path or query)."""
        rpc = self._source.chain.rpc if isinstance(self._source, KmsRegistry) else self._source.rpc
        return public_endpoint(rpc.url)

    def close(self) -> None:
        """Stop accepting checks; checks already talking to the chain finish on their own."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Authorizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decisions ----------------------------------------------------------------------------------
    def authorize_app(self, boot: BootInfo) -> Decision:
        """DstackKms.isAppAllowed: app registered, OS image allowed, then the app's own policy."""
        return self._authorize(boot, "app")

    def authorize_kms(self, boot: BootInfo) -> Decision:
        """DstackKms.isKmsAllowed: TCB up to date, OS image, KMS aggregated MR and KMS device allowed."""
        return self._authorize(boot, "kms")

    async def authorize_app_async(self, boot: BootInfo) -> Decision:
        """`authorize_app` for an event loop: it waits for the chain without holding a thread of its own."""
        return await self._authorize_async(boot, "app")

    def _authorize(self, boot: BootInfo, kind: CheckKind) -> Decision:
        check = self._check_of(boot)
        if isinstance(check, Decision):
            return check
        try:
            decision = self._within_deadline(lambda: self._ask_chain(check, kind))
        except Exception as exc:  # fail closed on anything at all
            return self._failed_closed(check, kind, exc)
        return self._decided(check, kind, decision)

    async def _authorize_async(self, boot: BootInfo, kind: CheckKind) -> Decision:
        check = self._check_of(boot)
        if isinstance(check, Decision):
            return check
        try:
            decision = await self._within_deadline_async(lambda: self._ask_chain(check, kind))
        except Exception as exc:  # fail closed on anything at all
            return self._failed_closed(check, kind, exc)
        return self._decided(check, kind, decision)

    @staticmethod
    def _check_of(boot: BootInfo) -> BootCheck | Decision:
        """The contract's tuple for `boot`, or the denial of a BootInfo the contract cannot take."""
        try:
            return boot_check(boot)
        except Exception as exc:  # not a BootInfo the contract can take: denied before any chain call
            detail = str(exc) if isinstance(exc, InvalidBootInfo) else type(exc).__name__
            return Decision(False, f"{INVALID_REQUEST}: {detail}", "")

    def _failed_closed(self, check: BootCheck, kind: CheckKind, exc: Exception) -> Decision:
        cause = short_cause(exc)
        self._failed(f"{kind} check for app {check.app_id} failed closed: {cause}")
        return Decision.backend_failure(cause)

    def _decided(self, check: BootCheck, kind: CheckKind, decision: Decision) -> Decision:
        self._answered()
        log.info(
            "%s check for app %s: %s%s",
            kind,
            check.app_id,
            "allowed" if decision.allowed else "denied",
            f" ({decision.reason})" if decision.reason else "",
        )
        return decision

    def _ask_chain(self, check: BootCheck, kind: CheckKind) -> Decision:
        function = "isAppAllowed" if kind == "app" else "isKmsAllowed"
        verdict, gateway = self.registry.call_many(
            [(function, (check.as_abi(),)), ("gatewayAppId", ())], aggregate=False
        )
        for name, value in ((function, verdict), ("gatewayAppId", gateway)):
            if isinstance(value, ContractReverted):
                raise OperationFailed(f"{name} reverted: {value.reason}")
            if isinstance(value, Exception):
                raise value
        if not (isinstance(verdict, tuple) and len(verdict) == 2):
            raise OperationFailed(f"{function} returned an unexpected value")
        allowed, reason = verdict
        if not isinstance(allowed, bool) or not isinstance(reason, str) or not isinstance(gateway, str):
            raise OperationFailed(f"{function} returned an unexpected value")
        return Decision(allowed, reason, gateway)

    # -- metadata -----------------------------------------------------------------------------------
    def info(self) -> BackendInfo:
        """The chain metadata of `GET /`, read now; BackendUnavailable when the chain cannot answer."""
        try:
            info = self._within_deadline(self._read_info)
        except Exception as exc:
            cause = short_cause(exc)
            self._failed(f"backend health check failed: {cause}")
            raise BackendUnavailable(f"{BACKEND_UNAVAILABLE}: {cause}") from None
        self._answered()
        return info

    def _read_info(self) -> BackendInfo:
        registry = self.registry
        gateway, implementation = registry.call_many([("gatewayAppId", ()), ("appImplementation", ())], aggregate=False)
        for value in (gateway, implementation):
            if isinstance(value, Exception):
                raise value
        return BackendInfo(
            kms_contract_addr=registry.address,
            eth_rpc_url=public_endpoint(registry.chain.rpc.url),
            gateway_app_id=str(gateway),
            chain_id=registry.chain.chain_id,
            app_implementation=str(implementation),
        )

    # -- outages ------------------------------------------------------------------------------------
    def _failed(self, message: str) -> None:
        """Log a failure: a warning when it starts an outage, debug while the outage goes on."""
        with self._outage_lock:
            first = self._outage is None
            if first:
                self._outage = message
        if first:
            log.warning("%s (denying until the chain answers; repeats are logged at debug level)", message)
        else:
            log.debug("%s", message)

    def _answered(self) -> None:
        """The chain answered: end the current outage, if any, with one line."""
        if self._outage is None:  # the common case, without taking the lock
            return
        with self._outage_lock:
            ended, self._outage = self._outage, None
        if ended is not None:
            log.info("authorization backend answers again")

    # -- deadline -----------------------------------------------------------------------------------
    def _within_deadline(self, work: Callable[[], _T]) -> _T:
        if self._closed.is_set():
            raise OperationFailed("authorizer is closed")
        future: Future[_T] = self._pool.submit(work)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()  # still queued: never runs; already running: ends with the RPC client's timeout
            raise OperationFailed(f"no answer within {self.timeout:g}s") from None

    async def _within_deadline_async(self, work: Callable[[], _T]) -> _T:
        """`_within_deadline` with the event loop keeping the time instead of a blocked thread."""
        if self._closed.is_set():
            raise OperationFailed("authorizer is closed")
        future: Future[_T] = self._pool.submit(work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            future.cancel()  # still queued: never runs; already running: ends with the RPC client's timeout
            raise OperationFailed(f"no answer within {self.timeout:g}s") from None


def short_cause(exc: BaseException) -> str:
    """One line about a failure, without URLs: warden's own errors already redact them; others are named only."""
    if isinstance(exc, WardenError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return text if len(text) <= 200 else text[:199] + "…"
    return type(exc).__name__


def describe(decision: Decision) -> dict[str, Any]:
    """A decision as warden's JSON output shows it."""
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "gateway_app_id": decision.gateway_app_id,
        "backend_unavailable": decision.unavailable,
    }
