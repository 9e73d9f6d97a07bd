"""What the scheduler remembers about one task (stored in the JetStream KV bucket TASKS_BUCKET)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backtest_core.contracts import (
    BacktestEvent,
    CancelRun,
    DeadLetteredJob,
    Failure,
    RunBacktestJob,
    TaskId,
    TaskState,
    TrialSpec,
)
from backtest_core.model.config import BacktestConfig, Frozen, UtcDatetime
from pydantic import Field

from backtest_scheduler.errors import SchedulerError

# Namespace of the deterministic message ids: re-publishing the same event or job after a crash
# reuses its id, so JetStream's duplicate window (Nats-Msg-Id) and the results writer drop the copy.
_IDS = uuid.UUID("5b0c8f2e-6f1a-4c1e-9a43-0d6c2a7e9b11")

# How many run reports a record remembers having applied (a redelivered one is then ignored).
APPLIED_KEPT = 16


def event_id(task_id: str, seq: int, state: TaskState) -> str:
    """Return the message id of a task's event number `seq` moving it to `state` (32 hex characters).

    Events are published only after their transition is stored (compare-and-set on the record), so
    one task never has two different events with the same `seq`; the state is in the id as well.
    """
    return uuid.uuid5(_IDS, f"{task_id}/event/{seq}/{state.value}").hex


def job_id(task_id: str, attempt: int) -> str:
    """Return the message id of a task's job for `attempt` (32 hex characters)."""
    return uuid.uuid5(_IDS, f"{task_id}/job/{attempt}").hex


class Outbox(Frozen):
    """What a stored transition still has to publish: its events, job, dead letter, cancel broadcast."""

    events: tuple[BacktestEvent, ...] = ()
    job: RunBacktestJob | None = None
    dead_letter: DeadLetteredJob | None = None
    cancel_run: CancelRun | None = None


class TaskRecord(Frozen):
    """One task's state: the last emitted `seq`, the current `attempt`, and the failures so far.

    `requeue_at` is set while a retry waits for its back-off; the job of `attempt` is queued then.
    `outbox` holds the effects of the last transition until they are published (store, then publish,
    then clear: a scheduler that dies in between leaves them for the next one to publish). `applied`
    holds the message ids of the last APPLIED_KEPT run reports applied.
    """

    task_id: TaskId
    user_id: str
    state: TaskState
    seq: int = Field(ge=0)
    attempt: int = Field(ge=1)
    config: BacktestConfig | None  # None: the task ended before a readable submission came
    trials: tuple[TrialSpec, ...] = ()  # a sweep's chunk: the trials run over `config`
    cache_key: str
    failures: tuple[Failure, ...] = ()
    requeue_at: UtcDatetime | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    outbox: Outbox | None = None
    applied: tuple[str, ...] = ()
    # The last progress fraction emitted while PROGRESS: a report at or below it is stale (redelivered).
    progress: float = Field(default=0.0, ge=0.0, le=1.0)

    @property
    def chunk(self) -> bool:
        """Whether the task runs a sweep's chunk of trials (its events say so: no `backtests` document)."""
        return bool(self.trials)

    def job(self) -> RunBacktestJob:
        """Return the runner job of the current attempt (same id every time it is built)."""
        if self.config is None:
            raise SchedulerError(f"task {self.task_id} has no config to run (it is {self.state.value})")
        return RunBacktestJob(
            message_id=job_id(self.task_id, self.attempt),
            task_id=self.task_id,
            attempt=self.attempt,
            user_id=self.user_id,
            config=self.config,
            cache_key=self.cache_key,
            trials=self.trials,
        )


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A record with the store's revision, for compare-and-set updates."""

    record: TaskRecord
    revision: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of infrastructure faults with exponential back-off.

    Attempt n (1-based) that fails is retried after min(base_delay_s * 2**(n-1), max_delay_s) seconds,
    as long as n < max_attempts; the last failure dead-letters the job.
    """

    max_attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, was {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError(
                f"need 0 <= base_delay_s <= max_delay_s, was {self.base_delay_s}, {self.max_delay_s}"
            )

    def delay_s(self, failed_attempt: int) -> float:
        """Return the back-off in seconds before the attempt after `failed_attempt`."""
        return min(self.base_delay_s * 2.0 ** (failed_attempt - 1), self.max_delay_s)

    def may_retry(self, failed_attempt: int) -> bool:
        """Return whether another attempt follows `failed_attempt`."""
        return failed_attempt < self.max_attempts
