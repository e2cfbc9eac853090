"""Many view calls in as few round trips as the provider allows.

Where Multicall3 is deployed (Base, Ethereum and most EVM chains; the devnet places warden's own
aggregate3-compatible contract at the same address), one eth_call carries up to CALLS_PER_MULTICALL views
and several such eth_calls share one JSON-RPC batch. Elsewhere each view is its own eth_call, many per
batch. What was found out (Multicall3 there or not, batches refused) is kept in the chain's
`ProviderLimits`, which the log cache persists per endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector

if TYPE_CHECKING:
    from warden.chain.connection import Chain

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
AGGREGATE3 = function_signature_to_4byte_selector("aggregate3((address,bool,bytes)[])")
CALLS_PER_MULTICALL = 500  # about 5k gas per membership view: far below any node's eth_call gas cap


@dataclass(frozen=True)
class Reverted:
    """A view that reverted inside a multicall, with its revert data (empty when there is none)."""

    data: bytes


ViewAnswer = bytes | Reverted | Exception


def read_views(
    chain: Chain, calls: Sequence[tuple[str, bytes]], block: int | str = "latest", *, aggregate: bool = True
) -> list[ViewAnswer]:
    """The raw answer of each (address, calldata) view at `block`: bytes, `Reverted`, or the RpcError an
    eth_call raised. `aggregate=False` asks each contract directly (one eth_call each, in batches)."""
    if not calls:
        return []
    tag = hex(block) if isinstance(block, int) else block
    if aggregate and len(calls) > 1 and chain.limits.multicall is not False:
        answers = _through_multicall(chain, calls, tag)
        if answers is not None:
            return answers
    return _one_call_each(chain, calls, tag)


def _through_multicall(chain: Chain, calls: Sequence[tuple[str, bytes]], tag: str) -> list[ViewAnswer] | None:
    """None when Multicall3 is not there (or would not answer): the caller falls back to one call each."""
    chunks = [calls[i : i + CALLS_PER_MULTICALL] for i in range(0, len(calls), CALLS_PER_MULTICALL)]
    requests = [
        (
            "eth_call",
            [{"to": MULTICALL3, "data": "0x" + _aggregate3(chunk).hex()}, tag],
        )
        for chunk in chunks
    ]
    raw = chain.ask(requests)  # a node that does not answer raises: falling back would not help
    answers: list[ViewAnswer] = []
    for chunk, reply in zip(chunks, raw, strict=True):
        if isinstance(reply, Exception) or reply in (None, "0x", ""):
            if reply in ("0x", ""):
                chain.limits.multicall = False  # no contract at the Multicall3 address on this chain
            return None
        try:
            (results,) = abi_decode(["(bool,bytes)[]"], bytes.fromhex(str(reply)[2:]))
        except (DecodingError, ValueError):  # something else lives at that address
            chain.limits.multicall = False
            return None
        if len(results) != len(chunk):
            chain.limits.multicall = False
            return None
        answers.extend(bytes(data) if ok else Reverted(bytes(data)) for ok, data in results)
    chain.limits.multicall = True
    return answers


def _aggregate3(chunk: Sequence[tuple[str, bytes]]) -> bytes:
    return AGGREGATE3 + abi_encode(["(address,bool,bytes)[]"], [[(to, True, data) for to, data in chunk]])


def _one_call_each(chain: Chain, calls: Sequence[tuple[str, bytes]], tag: str) -> list[ViewAnswer]:
    requests = [("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag]) for to, data in calls]
    answers: list[ViewAnswer] = []
    for reply in chain.ask(requests):
        if isinstance(reply, Exception):
            answers.append(reply)
        else:
            answers.append(bytes.fromhex(str(reply)[2:]))
    return answers
