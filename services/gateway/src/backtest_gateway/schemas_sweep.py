"""The sweep resource's bodies: the request, its acknowledgement, status, trial pages and surfaces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backtest_core.contracts import SweepCounts, SweepState
from backtest_research.search import SweepSearch
from backtest_research.sweep_records import StrategyName, SweepRecord
from pydantic import BaseModel, Field

from backtest_gateway.schemas_strategy import BacktestRequest


class SweepRequest(BacktestRequest):
    """A backtest (its `params` fixed for every trial) and the search over its other params."""

    search: SweepSearch


class SweepSubmitted(BaseModel):
    """The answer to a submission: the sweep's id, its trial count and where to follow it."""

    sweep_id: str
    state: SweepState
    trials: int
    status_url: str
    trials_url: str


class SweepStatus(BaseModel):
    """A sweep: state, counts, the best trial so far, and once ended its overfitting statistics.

    A cancelled sweep is CANCELLED at once (no trial is sent after it); `finished_at` is set when its
    last running trial has ended too, and from then on nothing about it changes.
    """

    sweep_id: str
    user_id: str
    state: SweepState
    counts: SweepCounts
    best: dict[str, Any] | None
    overfitting: dict[str, Any] | None
    search: SweepSearch
    strategy: str
    uploaded: StrategyName | None
    symbols: list[str]
    interval: str
    start: datetime | None
    end: datetime | None
    failure: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_record(cls, record: SweepRecord) -> SweepStatus:
        config = record.config
        spec = config.strategy
        strategy = spec if isinstance(spec, str) else getattr(spec, "builtin", None) or "uploaded"
        return cls(
            sweep_id=record.sweep_id,
            user_id=record.user_id,
            state=record.state,
            counts=record.counts,
            best=record.best,
            overfitting=record.overfitting,
            search=record.search,
            strategy=record.strategy.name if record.strategy else str(strategy),
            uploaded=record.strategy,
            symbols=list(config.symbols),
            interval=config.interval,
            start=config.start,
            end=config.end,
            failure=record.failure,
            created_at=record.created_at,
            updated_at=record.updated_at,
            finished_at=record.finished_at,
        )


class SweepPage(BaseModel):
    """A page of the caller's sweeps, newest first."""

    sweeps: list[SweepStatus]
    total: int
    limit: int
    offset: int


class TrialPage(BaseModel):
    """A page of a sweep's trials: id, params, state, metrics (the keys of `backtest run --json`)."""

    trials: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class SurfaceAxis(BaseModel):
    """One param of the surface and its values, ascending."""

    name: str
    values: list[Any]


class SweepSurface(BaseModel):
    """`metric` over two params: `z[i][j]` at y.values[i], x.values[j] (None: no successful trial there).

    With more params than two, each cell shows the trial that is best by the sweep's objective among
    those at that (x, y), and `trials[i][j]` names it.
    """

    metric: str
    x: SurfaceAxis
    y: SurfaceAxis
    z: list[list[float | None]]
    trials: list[list[int | None]] = Field(description="the trial id shown in each cell")
