"""What the gateway needs from the outside world, as Protocols; adapters live in `adapters/`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, Protocol

from backtest_core.config import BacktestConfig
from backtest_core.contracts import (
    BacktestEvent,
    CancelBacktest,
    Failure,
    SubmitBacktest,
    TaskState,
)
from pydantic import BaseModel, ConfigDict, Field


class TaskRecord(BaseModel):
    """One backtest as stored in MongoDB `backtests` (the results writer owns every field after seq 0).

    `progress` is the last reported fraction in [0, 1]; `result` is the raw stored result document.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str
    user_id: str
    state: TaskState
    seq: int = 0
    config: BacktestConfig | None = None
    progress: float | None = None
    stage: str | None = None
    attempt: int | None = None
    result: dict[str, Any] | None = None
    failure: Failure | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TaskPage(BaseModel):
    """One page of a user's tasks, newest first; `total` counts every match."""

    model_config = ConfigDict(frozen=True)

    items: list[TaskRecord]
    total: int = Field(ge=0)


class IdempotencyClaim(BaseModel):
    """The task an Idempotency-Key is bound to, with the hash of the config it was submitted with."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    config_hash: str


class TaskStore(Protocol):
    """Read and record backtests (MongoDB `backtests`)."""

    async def insert_pending(self, record: TaskRecord) -> None:
        """Record a submission (state PENDING, seq 0) durably before its command is published."""
        ...

    async def delete_pending(self, task_id: str) -> None:
        """Remove a PENDING submission whose command could not be published."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the task, reading a secondary first and the primary when the secondary misses it."""
        ...

    async def page(self, user_id: str | None, state: TaskState | None, limit: int, offset: int) -> TaskPage:
        """Return tasks of `user_id` (all users when None), newest first."""
        ...

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """Bind (user_id, key) to (task_id, config_hash) unless already bound; return the binding."""
        ...

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """Unbind (user_id, key) if it is bound to task_id."""
        ...


class CommandBus(Protocol):
    """Publish commands durably (JetStream, waiting for the ack)."""

    async def submit(self, command: SubmitBacktest) -> None:
        """Publish a SubmitBacktest; return once the stream stored it."""
        ...

    async def cancel(self, command: CancelBacktest) -> None:
        """Publish a CancelBacktest; return once the stream stored it."""
        ...


class EventFeed(Protocol):
    """Replay a task's events from its first one, then follow live ones."""

    def events(self, task_id: str) -> AsyncGenerator[BacktestEvent, None]:
        """Yield every event of `task_id` in seq order, from the start, forever (caller stops)."""
        ...

    async def has_events(self, task_id: str) -> bool:
        """True if the stream still holds events of `task_id` (they expire after the stream's max age)."""
        ...
