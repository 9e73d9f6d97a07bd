"""The public shapes of the backtest resource (request bodies are `BacktestRequest`)."""

from __future__ import annotations

from datetime import datetime

from backtest_core.contracts import Failure, TaskState
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult
from pydantic import BaseModel, ConfigDict, Field

from backtest_gateway.ports import StrategyRef, TaskRecord
from backtest_gateway.result_pages import ResultPage


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True)


class BacktestSubmitted(_Public):
    """A submission was recorded and queued; follow it at `status_url` or `stream_url`."""

    task_id: str
    state: TaskState
    status_url: str
    stream_url: str


class BacktestStatus(_Public):
    """Where a backtest is: its state, last progress `fraction` in [0, 1] and `stage`, failure if any.

    `fraction` and `stage` are named as in the stream's PROGRESS event; `progress` is the same fraction,
    kept for clients that read it.
    """

    task_id: str
    user_id: str
    state: TaskState
    seq: int
    fraction: float | None = None
    progress: float | None = None
    stage: str | None = None
    attempt: int | None = None
    failure: Failure | None = None
    cached_from: str | None = None
    config: BacktestConfig | None = None
    strategy_ref: StrategyRef | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_record(cls, record: TaskRecord) -> BacktestStatus:
        """Project a stored task onto its public status (no result)."""
        fields = record.model_dump(exclude={"result", "cache_key", "idempotency_key"})
        return cls.model_validate({**fields, "fraction": record.progress})


class BacktestResults(_Public):
    """The result of a successful backtest; `cached_from` names the task whose result was reused.

    `result.trades` and `result.equity_curve` hold one page; `page` says where it sits and what follows.
    """

    task_id: str
    state: TaskState
    cached_from: str | None = None
    page: ResultPage
    result: BacktestResult


class BacktestPage(_Public):
    """One page of backtests, newest first; `next_offset` is None on the last page."""

    items: list[BacktestStatus]
    total: int = Field(ge=0)
    limit: int
    offset: int
    next_offset: int | None


class CancelRequested(_Public):
    """Cancellation was requested; the task's state changes to CANCELLED when the scheduler applies it."""

    task_id: str
    state: TaskState
    cancel_requested: bool = True
