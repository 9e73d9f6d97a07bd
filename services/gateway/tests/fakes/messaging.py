"""The gateway's NATS ports in memory: a CommandBus that records what it publishes and an EventFeed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator

from backtest_core.contracts import BacktestEvent, CancelBacktest, CancelSweep, SubmitBacktest, SubmitSweep


class RecordingCommandBus:
    """Keeps every published command in order; `fail` makes the next publishes raise."""

    def __init__(self) -> None:
        self.published: list[SubmitBacktest | CancelBacktest | SubmitSweep | CancelSweep] = []
        self.fail: Exception | None = None

    async def submit(self, command: SubmitBacktest) -> None:
        """Record the command (or raise `fail`)."""
        if self.fail is not None:
            raise self.fail
        self.published.append(command)

    async def cancel(self, command: CancelBacktest) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def submit_sweep(self, command: SubmitSweep) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def cancel_sweep(self, command: CancelSweep) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def _record(self, command: SubmitBacktest | CancelBacktest | SubmitSweep | CancelSweep) -> None:
        if self.fail is not None:
            raise self.fail
        self.published.append(command)


class InMemoryEventFeed:
    """Per-task event logs; `append` is thread-safe so a test thread can feed a running app."""

    def __init__(self) -> None:
        self._logs: dict[str, list[BacktestEvent]] = defaultdict(list)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def followers(self) -> int:
        """How many `events()` iterators are open."""
        return len(self._waiters)

    def append(self, event: BacktestEvent) -> None:
        """Add an event to its task's log and wake every follower."""
        self._logs[event.task_id].append(event)
        for loop, flag in list(self._waiters):
            loop.call_soon_threadsafe(flag.set)

    async def has_events(self, task_id: str) -> bool:
        """True if the task's log is not empty."""
        return bool(self._logs.get(task_id))

    async def events(self, task_id: str) -> AsyncGenerator[BacktestEvent, None]:
        """Yield the task's log from the start, then wait for more."""
        position = 0
        flag = asyncio.Event()
        waiter = (asyncio.get_running_loop(), flag)
        self._waiters.append(waiter)
        try:
            while True:
                log = self._logs[task_id]
                while position < len(log):
                    yield log[position]
                    position += 1
                flag.clear()
                if position < len(self._logs[task_id]):
                    continue
                await flag.wait()
        finally:
            self._waiters.remove(waiter)
