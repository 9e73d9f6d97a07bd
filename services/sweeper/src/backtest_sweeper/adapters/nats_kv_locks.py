"""OwnerLocks across sweeper processes: a key in the JetStream KV bucket SWEEPER_LOCKS per held lock.

Taking a lock creates its key (compare-and-set: only one creator wins); while held, the holder rewrites
it every LOCK_TTL_S / 3 seconds at the revision it holds; releasing deletes it at that revision. The
bucket's TTL (LOCK_TTL_S) frees the lock of a sweeper killed while holding it within seconds. Within one
process a local lock queues the handlers first, so they never race each other over NATS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from backtest_messaging import ELECTION_ERRORS
from faststream.nats import NatsBroker
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from backtest_sweeper.locks import LocalLocks, LockBusy

log = logging.getLogger(__name__)

LOCKS_BUCKET = "SWEEPER_LOCKS"
LOCK_TTL_S = 10.0
WAIT_S = 20.0  # then the handler fails and its message comes back later
RETRY_PAUSE_S = 0.02


class NatsKvLocks:
    """Locks in one KV bucket shared by every sweeper of an instance; `open()` once connected."""

    def __init__(
        self,
        broker: NatsBroker,
        replicas: int = 1,
        wait_s: float = WAIT_S,
        bucket: str = LOCKS_BUCKET,
        ttl_s: float = LOCK_TTL_S,
    ) -> None:
        self._broker = broker
        self._replicas = replicas
        self._wait_s = wait_s
        self.bucket = bucket
        self._ttl_s = ttl_s
        self._local = LocalLocks()
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket if missing (idempotent)."""
        js = self._broker.config.connection_state.stream
        try:
            self._kv = await js.key_value(self.bucket)
        except BucketNotFoundError:
            config = KeyValueConfig(bucket=self.bucket, history=1, ttl=self._ttl_s, replicas=self._replicas)
            self._kv = await js.create_key_value(config)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        if self._kv is None:
            raise RuntimeError("NatsKvLocks used before open()")
        kv = self._kv
        async with self._local.hold(key):
            held = [await self._take(kv, key)]  # the revision this holder wrote last
            renewing = asyncio.create_task(self._renew(kv, key, held))
            try:
                yield
            finally:
                renewing.cancel()
                with suppress(asyncio.CancelledError):
                    await renewing
                try:
                    await kv.delete(key, last=held[0])
                except (KeyWrongLastSequenceError, *ELECTION_ERRORS) as error:  # expired, or NATS away
                    log.warning("lock %s not released (%r); it ends with the bucket's TTL", key, error)

    async def _renew(self, kv: KeyValue, key: str, held: list[int]) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                held[0] = await kv.update(key, b"held", last=held[0])
            except (KeyWrongLastSequenceError, *ELECTION_ERRORS) as error:
                log.warning("lock %s not renewed (%r)", key, error)

    async def _take(self, kv: KeyValue, key: str) -> int:
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                revision: int = await kv.create(key, b"held")
                return revision
            # KeyNotFoundError: create() found the key taken, then gone when it read it (released or
            # expired meanwhile): try again.
            except (KeyWrongLastSequenceError, KeyNotFoundError, *ELECTION_ERRORS):
                if time.monotonic() > deadline:
                    raise LockBusy(f"{key} held by another sweeper for over {self._wait_s:.0f} s") from None
                await asyncio.sleep(RETRY_PAUSE_S)
