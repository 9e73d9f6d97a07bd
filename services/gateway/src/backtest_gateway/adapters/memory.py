"""In-memory adapters of the gateway's ports, for tests and local development without servers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator

from backtest_core.contracts import BacktestEvent, CancelBacktest, SubmitBacktest, TaskState

from backtest_gateway.ports import IdempotencyClaim, TaskPage, TaskRecord


class InMemoryTaskStore:
    """A dict of TaskRecords; `put` lets a test play the results writer."""

    def __init__(self) -> None:
        self.records: dict[str, TaskRecord] = {}
        self.keys: dict[tuple[str, str], IdempotencyClaim] = {}

    def put(self, record: TaskRecord) -> None:
        """Store or replace a record (as the results writer would)."""
        self.records[record.task_id] = record

    async def insert_pending(self, record: TaskRecord) -> None:
        """Store a new submission; a duplicate task id is an error."""
        if record.task_id in self.records:
            raise KeyError(f"task_id {record.task_id} already stored")
        self.records[record.task_id] = record

    async def delete_pending(self, task_id: str) -> None:
        """Remove the submission if it is still PENDING at seq 0."""
        record = self.records.get(task_id)
        if record is not None and record.seq == 0 and record.state is TaskState.PENDING:
            del self.records[task_id]

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the record or None."""
        return self.records.get(task_id)

    async def page(self, user_id: str | None, state: TaskState | None, limit: int, offset: int) -> TaskPage:
        """Return matching records, newest first (by created_at, then task id)."""
        matches = [
            r
            for r in self.records.values()
            if (user_id is None or r.user_id == user_id) and (state is None or r.state is state)
        ]
        matches.sort(
            key=lambda r: (r.created_at.timestamp() if r.created_at else 0.0, r.task_id), reverse=True
        )
        return TaskPage(items=matches[offset : offset + limit], total=len(matches))

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """Bind the key unless bound; return the binding."""
        return self.keys.setdefault(
            (user_id, key), IdempotencyClaim(task_id=task_id, config_hash=config_hash)
        )

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """Unbind the key if it points at task_id."""
        claim = self.keys.get((user_id, key))
        if claim is not None and claim.task_id == task_id:
            del self.keys[(user_id, key)]


class RecordingCommandBus:
    """Keeps every published command in order; `fail` makes the next publishes raise."""

    def __init__(self) -> None:
        self.published: list[SubmitBacktest | CancelBacktest] = []
        self.fail: Exception | None = None

    async def submit(self, command: SubmitBacktest) -> None:
        """Record the command (or raise `fail`)."""
        if self.fail is not None:
            raise self.fail
        self.published.append(command)

    async def cancel(self, command: CancelBacktest) -> None:
        """Record the command (or raise `fail`)."""
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
