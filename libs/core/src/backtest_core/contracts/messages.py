"""Every message on the bus: commands (imperative), jobs, run reports and events (past tense), sweeps.

Every message is frozen, rejects unknown fields, carries `schema_version`, a unique `message_id`
(used as the JetStream `Nats-Msg-Id` for de-duplication) and a timezone-aware UTC timestamp.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from backtest_core.model.config import BacktestConfig, Frozen, Params, UtcDatetime
from backtest_core.model.results import TaskResult

SCHEMA_VERSION: Literal[1] = 1
MAX_FAILURE_MESSAGE = 10_000  # a failure's message, and a trial's reason, in characters


def new_id() -> str:
    """Return a fresh random id (32 hex characters)."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC. Only entrypoints call this; the engine never does."""
    return datetime.now(UTC)


TaskId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
# A progress stage names a part of the run (backtest_core.engine.run_progress.Stage): a short lowercase name,
# bounded wherever it travels (sandbox line, run report, event, and so the stored document and the API).
MAX_STAGE_CHARS = 64
Stage = Annotated[str, Field(min_length=1, max_length=MAX_STAGE_CHARS, pattern=r"^[a-z][a-z0-9_]*$")]


class Message(Frozen):
    """Base of every message on the bus."""

    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: str = Field(default_factory=new_id)
    occurred_at: UtcDatetime = Field(default_factory=utc_now)


# --- States and failure reasons -------------------------------------------------------------------


class TaskState(StrEnum):
    """A backtest's state (the seed's Celery states plus CANCELLED)."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"


TERMINAL_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILURE, TaskState.CANCELLED})


class FailureReason(StrEnum):
    """Why a backtest failed. Only INFRASTRUCTURE is retried."""

    INVALID_CONFIG = "invalid_config"  # settings rejected (names the field)
    INVALID_STRATEGY = "invalid_strategy"  # unknown name, syntax error, no strategy class
    STRATEGY_ERROR = "strategy_error"  # the user's code raised (traceback attached)
    NO_DATA = "no_data"  # no candles for a symbol in the range
    TIMEOUT = "timeout"  # past the wall-clock limit
    OUT_OF_MEMORY = "out_of_memory"  # past the memory limit
    OUTPUT_LIMIT = "output_limit"  # wrote more than the output cap
    BAD_OUTPUT = "bad_output"  # sandbox exited without a valid result
    INFRASTRUCTURE = "infrastructure"  # Docker, NATS or MongoDB fault; retried with back-off
    DEAD_LETTER = "dead_letter"  # retries exhausted


class Failure(Frozen):
    """A failure a user can act on: the reason code, a message, and the user's traceback if any."""

    reason: FailureReason
    message: str = Field(max_length=MAX_FAILURE_MESSAGE)
    traceback: str | None = Field(default=None, max_length=100_000)


# --- Commands (gateway -> scheduler) --------------------------------------------------------------


class TrialSpec(Frozen):
    """One trial of a sweep's chunk: its id in the sweep and the params it runs over the base config."""

    trial: int = Field(ge=0)
    params: Params


# The most trials one task runs (a chunk's result, with every trial's returns, stays far under a message's
# limit: ~55 KB a trial of 5,000 returns).
MAX_CHUNK_TRIALS = 64


class SubmitBacktest(Message):
    """Run this backtest for this user; with `trials`, run each of them instead (a sweep's chunk: the
    config is their base, the result a TrialsResult)."""

    kind: Literal["submit"] = "submit"
    task_id: TaskId
    user_id: str = Field(min_length=1, max_length=100)
    config: BacktestConfig
    idempotency_key: str | None = Field(default=None, max_length=200)
    trials: tuple[TrialSpec, ...] = Field(default=(), max_length=MAX_CHUNK_TRIALS)


class CancelBacktest(Message):
    """Cancel this backtest if it has not finished."""

    kind: Literal["cancel"] = "cancel"
    task_id: TaskId
    user_id: str


Command = Annotated[SubmitBacktest | CancelBacktest, Field(discriminator="kind")]


# --- Jobs (scheduler -> runner) -------------------------------------------------------------------


class RunBacktestJob(Message):
    """Run one attempt of a backtest (or of a sweep's chunk of `trials`) in a sandbox."""

    task_id: TaskId
    attempt: int = Field(ge=1)
    user_id: str
    config: BacktestConfig
    cache_key: str
    trials: tuple[TrialSpec, ...] = Field(default=(), max_length=MAX_CHUNK_TRIALS)


class CancelRun(Message):
    """Stop the container of this task, wherever it runs (core NATS broadcast)."""

    task_id: TaskId


# --- Run reports (runner -> scheduler) ------------------------------------------------------------


class RunStarted(Message):
    """A runner started the sandbox for this attempt."""

    kind: Literal["started"] = "started"
    task_id: TaskId
    attempt: int
    runner_id: str


class RunProgressed(Message):
    """The sandbox reported progress; `fraction` in [0, 1]."""

    kind: Literal["progressed"] = "progressed"
    task_id: TaskId
    attempt: int
    fraction: float = Field(ge=0, le=1)
    stage: Stage


class RunSucceeded(Message):
    """The sandbox produced a valid result."""

    kind: Literal["succeeded"] = "succeeded"
    task_id: TaskId
    attempt: int
    result: TaskResult
    duration_ms: int


class RunFailed(Message):
    """The attempt failed; `failure.reason` says whether it may be retried (only INFRASTRUCTURE)."""

    kind: Literal["failed"] = "failed"
    task_id: TaskId
    attempt: int
    failure: Failure


RunReport = Annotated[RunStarted | RunProgressed | RunSucceeded | RunFailed, Field(discriminator="kind")]


# --- Backtest events (scheduler -> everyone) ------------------------------------------------------


class BacktestEventBase(Message):
    """A change of a backtest's state. `seq` increases by one per task, so stale copies are detectable."""

    task_id: TaskId
    user_id: str
    seq: int = Field(ge=1)
    chunk: bool = Field(
        default=False,
        description="the task runs a sweep's chunk of trials: its events are the sweeper's, and no "
        "`backtests` document is written for it",
    )


class BacktestAccepted(BacktestEventBase):
    """The backtest was validated and queued."""

    state: Literal[TaskState.PENDING] = TaskState.PENDING
    config: BacktestConfig
    cache_key: str


class BacktestStarted(BacktestEventBase):
    """A runner started the sandbox."""

    state: Literal[TaskState.STARTED] = TaskState.STARTED
    attempt: int


class BacktestProgressed(BacktestEventBase):
    """The sandbox reported progress; `fraction` in [0, 1]."""

    state: Literal[TaskState.PROGRESS] = TaskState.PROGRESS
    fraction: float = Field(ge=0, le=1)
    stage: Stage


class BacktestRetrying(BacktestEventBase):
    """An infrastructure fault; the backtest is queued again after `delay_s`."""

    state: Literal[TaskState.RETRY] = TaskState.RETRY
    attempt: int
    delay_s: float
    failure: Failure


class BacktestSucceeded(BacktestEventBase):
    """The backtest finished; `cached_from` names the same user's task whose result was reused, if any.

    A result cached from another user's task is copied into this task with `cached_from` None: a task
    id of another user is never shown.
    """

    state: Literal[TaskState.SUCCESS] = TaskState.SUCCESS
    result: TaskResult
    cached_from: str | None = None


class BacktestFailed(BacktestEventBase):
    """The backtest failed for good."""

    state: Literal[TaskState.FAILURE] = TaskState.FAILURE
    failure: Failure


class BacktestCancelled(BacktestEventBase):
    """The backtest was cancelled on request."""

    state: Literal[TaskState.CANCELLED] = TaskState.CANCELLED


BacktestEvent = Annotated[
    BacktestAccepted
    | BacktestStarted
    | BacktestProgressed
    | BacktestRetrying
    | BacktestSucceeded
    | BacktestFailed
    | BacktestCancelled,
    Field(discriminator="state"),
]


class DeadLetteredJob(Message):
    """A job whose deliveries ran out, with the failures of every attempt."""

    job: RunBacktestJob
    history: list[Failure]


# --- Sweeps (gateway -> sweeper -> everyone) -----------------------------------------------------
# The sweep's definition (base config and search) is in its MongoDB document, written by the gateway
# before the command is published; the sweeper owns every change after that.


class SweepState(StrEnum):
    """A sweep's state: PENDING until the sweeper planned it, RUNNING while trials are out."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"


TERMINAL_SWEEP_STATES = frozenset({SweepState.SUCCESS, SweepState.FAILURE, SweepState.CANCELLED})


class SubmitSweep(Message):
    """Run the sweep stored under this id."""

    kind: Literal["submit"] = "submit"
    sweep_id: TaskId
    user_id: str = Field(min_length=1, max_length=100)


class CancelSweep(Message):
    """Stop this sweep: no more trials are submitted and the ones out are cancelled."""

    kind: Literal["cancel"] = "cancel"
    sweep_id: TaskId
    user_id: str


class SubmitWalkForward(Message):
    """Run the walk-forward stored under this id: a sweep per fold, then each fold's test run."""

    kind: Literal["walkforward_submit"] = "walkforward_submit"
    walkforward_id: TaskId
    user_id: str = Field(min_length=1, max_length=100)


class CancelWalkForward(Message):
    """Stop this walk-forward: its folds' sweeps are cancelled and no test run starts."""

    kind: Literal["walkforward_cancel"] = "walkforward_cancel"
    walkforward_id: TaskId
    user_id: str


SweepCommand = Annotated[
    SubmitSweep | CancelSweep | SubmitWalkForward | CancelWalkForward, Field(discriminator="kind")
]


class SweepCounts(Frozen):
    """A sweep's trials by outcome, and in all (`total` counts the trials planned so far and to come)."""

    total: int = Field(ge=0)
    done: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    cancelled: int = Field(default=0, ge=0)
    running: int = Field(default=0, ge=0)


class SweepEvent(Message):
    """A sweep moved: a trial ended (`trial` its id) or the sweep changed state."""

    sweep_id: TaskId
    user_id: str
    state: SweepState
    counts: SweepCounts
    trial: int | None = None
    best_trial: int | None = None


class WalkForwardEvent(Message):
    """A walk-forward moved: a fold's sweep chose its params (`fold`, `params`, `fold_state` TRAINED or
    TESTING), a fold ended (`fold_state` DONE with `out_of_sample`, its test window's metrics, or
    NO_TRIAL, FAILED, CANCELLED), or the walk-forward changed state (`fold` None; `finished` once nothing
    about it changes any more)."""

    walkforward_id: TaskId
    user_id: str
    state: SweepState
    finished: bool = False
    folds_total: int = Field(ge=1)
    folds_done: int = Field(ge=0, description="folds ended")
    fold: int | None = Field(default=None, ge=0)
    fold_state: str | None = None
    params: Params | None = None
    out_of_sample: dict[str, float | int | None] | None = None
