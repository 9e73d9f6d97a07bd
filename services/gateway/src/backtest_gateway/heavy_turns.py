"""Each user's heavy answers take turns: at most `per_user` of one user's result pages are being decoded,
serialised or sent at a time, the rest wait parked (no CPU).

Rate limits bound how often a user asks; this bounds how much of the event loop one user's in-flight
answers hold at once, so a tenant paging a huge result from many connections competes with another
user's request as one client, not as many (issue 12: one tenant stalled the gateway for everyone).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class HeavyTurns:
    """Per-user semaphores, created on first use and dropped when nobody of that user holds or waits."""

    def __init__(self, per_user: int = 1) -> None:
        if per_user < 1:
            raise ValueError(f"per_user must be at least 1, got {per_user}")
        self._per_user = per_user
        self._turns: dict[str, asyncio.Semaphore] = {}
        self._users: Counter[str] = Counter()  # holding or waiting, per user

    def in_use(self, user_id: str) -> int:
        """How many of the user's heavy answers hold or wait for a turn now."""
        return self._users[user_id]

    @asynccontextmanager
    async def turn(self, user_id: str) -> AsyncIterator[None]:
        """Wait for one of the user's turns and hold it for the block."""
        turns = self._turns.setdefault(user_id, asyncio.Semaphore(self._per_user))
        self._users[user_id] += 1
        try:
            async with turns:
                yield
        finally:
            self._users[user_id] -= 1
            if not self._users[user_id]:
                del self._users[user_id]
                del self._turns[user_id]
