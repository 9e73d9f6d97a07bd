"""At most N open WebSocket streams per user: one tenant cannot hold every relay of the gateway."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from backtest_gateway.errors import TooManyStreams


class StreamSlots:
    """Counts each user's open streams (used from the event loop only, so no lock)."""

    def __init__(self, per_user_max: int) -> None:
        self._per_user_max = per_user_max
        self._open: Counter[str] = Counter()

    def open_streams(self, user_id: str) -> int:
        """How many streams `user_id` holds now."""
        return self._open[user_id]

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """Hold one of the user's slots for the block, or raise TooManyStreams if all are taken."""
        if self._open[user_id] >= self._per_user_max:
            raise TooManyStreams(
                f"at most {self._per_user_max} open streams per user, {user_id!r} has "
                f"{self._open[user_id]}; close one or poll GET /backtest/status"
            )
        self._open[user_id] += 1
        try:
            yield
        finally:
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]
