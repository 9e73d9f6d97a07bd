"""What the scheduler needs from the outside world (Protocols); adapters implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from backtest_core.contracts import BacktestEvent, CancelRun, DeadLetteredJob, RunBacktestJob

from backtest_scheduler.admission import AdmissionState
from backtest_scheduler.decisions import CachedResult
from backtest_scheduler.task import StoredTask, TaskRecord


class TaskStore(Protocol):
    """Task records with compare-and-set: a write fails with TaskConflict if another writer was first."""

    async def get(self, task_id: str) -> StoredTask | None:
        """Return the task and its revision, or None if unknown."""
        ...

    async def create(self, record: TaskRecord) -> int:
        """Store a new task and return its revision; TaskConflict if it exists."""
        ...

    async def update(self, record: TaskRecord, revision: int) -> int:
        """Replace the task if still at `revision` and return the new revision; TaskConflict otherwise."""
        ...

    async def waiting_for_requeue(self) -> list[TaskRecord]:
        """Return the tasks in RETRY whose job is not queued yet (to resume their back-off)."""
        ...

    async def owing(self) -> list[str]:
        """Return the ids of the tasks whose last transition is stored but not yet published (outbox)."""
        ...


class ResultCache(Protocol):
    """Finished results by cache key."""

    async def find_success(self, cache_key: str) -> CachedResult | None:
        """Return a SUCCESS stored with this cache key, or None."""
        ...


class EventBus(Protocol):
    """Where the scheduler's events, jobs, dead letters and cancel broadcasts go."""

    async def publish_event(self, event: BacktestEvent) -> None:
        """Publish a task event durably (waits for the stream's ack)."""
        ...

    async def enqueue_job(self, job: RunBacktestJob) -> None:
        """Put a job on the runners' work queue durably."""
        ...

    async def publish_dead_letter(self, dead: DeadLetteredJob) -> None:
        """Store a dead-lettered job durably."""
        ...

    async def broadcast_cancel(self, cancel: CancelRun) -> None:
        """Tell every runner to stop this task's container (fire and forget)."""
        ...


class DeadJobs(Protocol):
    """The jobs JetStream gave up delivering (they stay in the work queue until removed)."""

    async def read(self, stream_seq: int) -> RunBacktestJob | None:
        """Return the job at `stream_seq` of the jobs stream, or None if it is gone."""
        ...

    async def remove(self, stream_seq: int) -> None:
        """Remove the job at `stream_seq` (once its dead-lettering is stored); gone already is fine."""
        ...


class Timer(Protocol):
    """Runs a callback later."""

    def call_later(self, delay_s: float, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` after `delay_s` seconds."""
        ...


class AdmissionStore(Protocol):
    """The admission state (admission.AdmissionState) with compare-and-set, like TaskStore."""

    async def load(self) -> tuple[AdmissionState, int | None]:
        """Return the state and its revision (None: nothing stored yet, an empty state)."""
        ...

    async def save(self, state: AdmissionState, revision: int | None) -> None:
        """Store the state if its revision is still `revision` (None: create); TaskConflict otherwise."""
        ...
