"""Who may change a sweep or a walk-forward right now: one holder at a time, across every sweeper.

A handler changes a sweep's state in several reads and writes (count the trials, send the next ones,
rank, finish); two sweepers doing that for one sweep at once could send a trial twice or write stale
counts after the sweep finished. Each handler holds the sweep's lock for the whole change: `LocalLocks`
within one process (tests, one sweeper), `adapters.nats_kv_locks.NatsKvLocks` across processes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class OwnerLocks(Protocol):
    """Exclusive holds by key (`sweep.<id>`, `walkforward.<id>`)."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold the key's lock for the block; raises LockBusy if it cannot be had in time."""
        ...


class LockBusy(RuntimeError):
    """Another sweeper held the lock for longer than a handler waits: the message is redelivered."""


class LocalLocks:
    """One asyncio.Lock per key: exclusive within this process only."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._locks[key]:
            yield
