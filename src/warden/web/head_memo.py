"""Values computed from an app's on-chain state, kept with the head they were computed at.

The chain cannot change without a new block, so while the head has not moved a view asks the node one
`eth_blockNumber` and reuses what it computed before, instead of reading logs and confirming every device
again. One per process; reads of one key wait for each other, so a burst of page views reads the chain once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from warden.chain.connection import Chain

T = TypeVar("T")
KEPT = 256  # keys remembered (apps); the least recently computed is forgotten first


class HeadTracked(Generic[T]):
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._last: dict[Hashable, tuple[tuple[int, Hashable], T]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, key: Hashable, chain: Chain, compute: Callable[[], T], version: Hashable = None) -> T:
        """The value for `key` at the chain's current head (and `version` of whatever else it merges, read
        before calling): computed now unless it was at this head and version."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            head = (chain.block_number(), version)
            last = self._last.get(key)
            if last is not None and last[0] == head:
                return last[1]
            value = compute()  # may see a newer head: then the next read computes again, never the reverse
            with self._guard:
                self._last.pop(key, None)
                self._last[key] = (head, value)
                while len(self._last) > self.kept:
                    forgotten = next(iter(self._last))
                    del self._last[forgotten]
                    self._locks.pop(forgotten, None)
            return value
