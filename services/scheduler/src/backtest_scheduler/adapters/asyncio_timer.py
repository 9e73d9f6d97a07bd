"""Timer on the running asyncio loop; pending callbacks are cancelled on close()."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class AsyncioTimer:
    """Runs coroutine callbacks later as tasks of the current loop (not durable: see resume_retries)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def call_later(self, delay_s: float, callback: Callable[[], Awaitable[None]]) -> None:
        async def later() -> None:
            await asyncio.sleep(delay_s)
            await callback()

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Return how many callbacks have not run yet."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every pending callback and wait for them to stop."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
