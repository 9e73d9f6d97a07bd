"""Read-your-writes for the WebSocket: a frame goes out only once REST can read the state it shows."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from backtest_gateway.ports import TaskStore

log = logging.getLogger(__name__)

POLL_FIRST_S = 0.01
POLL_MAX_S = 0.2


class StoredSeqWaiter:
    """Wait until the task store holds a task at a given seq (the results writer stores each event).

    The highest stored seq seen is remembered, so replaying a finished task's events reads the store
    once. After `timeout_s` without the store catching up (results writer down), give up and say so.
    """

    def __init__(
        self,
        store: TaskStore,
        task_id: str,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._timeout_s = timeout_s
        self._clock = clock
        self._stored = -1

    async def wait_for(self, seq: int) -> bool:
        """Return True once the store shows `seq` or later; False if it did not within the timeout."""
        deadline = self._clock() + self._timeout_s
        delay = POLL_FIRST_S
        while self._stored < seq:
            stored = await self._store.stored_seq(self._task_id)
            if stored is not None:
                self._stored = max(self._stored, stored)
            if self._stored >= seq:
                break
            if self._clock() >= deadline:
                log.warning(
                    "task %s: the store shows seq %s, not %s, after %.1f s; sending the frame anyway",
                    self._task_id,
                    self._stored,
                    seq,
                    self._timeout_s,
                )
                return False
            await anyio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)
        return True
