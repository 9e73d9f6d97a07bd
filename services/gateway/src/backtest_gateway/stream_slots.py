"""At most N open WebSocket streams per user, over every gateway: one tenant cannot hold every relay.

Each open stream holds a lease in the shared QuotaStore: the user's entry maps a holder id to the time
its lease ends. A gateway renews its streams' leases every `lease_s / 3` seconds and removes them when a
stream closes; the leases of a gateway killed with kill -9 end `lease_s` later, freeing the slots. If the
store cannot be reached the stream opens anyway (logged), as the rate limiter lets requests through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from backtest_gateway.errors import QuotasUnavailable, TooManyStreams
from backtest_gateway.ports import QuotaChange, QuotaStore
from backtest_gateway.ratelimit import Clock

log = logging.getLogger(__name__)

LEASE_S = 30.0
RENEWALS_PER_LEASE = 3

Leases = dict[str, float]  # holder id -> wall-clock end of its lease


def _leases(value: bytes | None, now: float) -> Leases:
    held: Leases = json.loads(value) if value else {}
    return {holder: until for holder, until in held.items() if until > now}


def _encoded(leases: Leases) -> bytes | None:
    return json.dumps(leases, sort_keys=True).encode() if leases else None


class StreamSlots:
    """Each user's stream leases in `quotas`; `clock` is wall-clock seconds (tests inject one)."""

    def __init__(
        self, per_user_max: int, quotas: QuotaStore, lease_s: float = LEASE_S, clock: Clock = time.time
    ) -> None:
        self._per_user_max = per_user_max
        self._quotas = quotas
        self.lease_s = lease_s
        self._clock = clock

    async def open_streams(self, user_id: str) -> int:
        """How many streams `user_id` holds now, on every gateway."""
        now = self._clock()
        held: int = await self._quotas.change(
            self._key(user_id), lambda value: (value, len(_leases(value, now)))
        )
        return held

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        """Hold one of the user's slots for the block, or raise TooManyStreams if all are taken."""
        holder = uuid.uuid4().hex
        await self._acquire(user_id, holder)
        renewing = asyncio.create_task(self._renew(user_id, holder))
        try:
            yield
        finally:
            renewing.cancel()
            with suppress(asyncio.CancelledError):
                await renewing
            await self._release(user_id, holder)

    def _key(self, user_id: str) -> str:
        return f"streams.{user_id}"

    async def _acquire(self, user_id: str, holder: str) -> None:
        now = self._clock()

        def change(value: bytes | None) -> tuple[bytes | None, int | None]:
            leases = _leases(value, now)
            if len(leases) >= self._per_user_max:
                return value, len(leases)
            return _encoded({**leases, holder: now + self.lease_s}), None

        try:
            refused_at: int | None = await self._quotas.change(self._key(user_id), change)
        except QuotasUnavailable as error:
            log.warning("stream slots not checked (%s): a user's stream opened", error)
            return
        if refused_at is not None:
            raise TooManyStreams(
                f"at most {self._per_user_max} open streams per user, {user_id!r} has "
                f"{refused_at}; close one or poll GET /backtest/status"
            )

    async def _renew(self, user_id: str, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / RENEWALS_PER_LEASE)
            try:
                await self._quotas.change(self._key(user_id), self._extend(holder, self._clock()))
            except QuotasUnavailable as error:
                log.warning("stream lease not renewed (%s); next try in %.0f s", error, self.lease_s / 3)

    def _extend(self, holder: str, now: float) -> QuotaChange:
        def change(value: bytes | None) -> tuple[bytes | None, None]:
            return _encoded({**_leases(value, now), holder: now + self.lease_s}), None

        return change

    async def _release(self, user_id: str, holder: str) -> None:
        now = self._clock()

        def change(value: bytes | None) -> tuple[bytes | None, None]:
            leases = _leases(value, now)
            leases.pop(holder, None)
            return _encoded(leases), None

        try:
            await self._quotas.change(self._key(user_id), change)
        except QuotasUnavailable as error:
            log.warning("stream lease not removed (%s); it ends by itself in %.0f s", error, self.lease_s)
