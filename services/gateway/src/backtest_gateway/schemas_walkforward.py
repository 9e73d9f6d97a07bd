"""The walk-forward resource's bodies: the request, its acknowledgement, status and pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from backtest_core.contracts import SweepState
from backtest_core.model.config import BuiltinStrategy, SourceStrategy
from backtest_research.search import SweepSearch
from backtest_research.walkforward_records import FoldRecord, WalkForwardOptions, WalkForwardRecord
from pydantic import BaseModel, Field

from backtest_gateway.schemas_sweep import SweepRequest

Length = Annotated[
    int | str, Field(description="a count of bars (500) or a duration of the interval (90d, 12h, 30m, 2w)")
]


class WalkForwardRequest(SweepRequest):
    """A sweep (backtest fields and `search`) and the folds: `backtest walkforward`'s options."""

    train: Length
    test: Length
    step: Length | None = Field(default=None, description="between folds; default: `test`")
    gap: Length = Field(default=0, description="between a train and its test window (purge/embargo)")
    anchored: bool = Field(default=False, description="every train window starts at the first bar")


class WalkForwardSubmitted(BaseModel):
    """The answer to a submission: the walk-forward's id, its fold count and where to follow it."""

    walkforward_id: str
    state: SweepState
    folds: int
    status_url: str
    result_url: str


class WalkForwardStatus(BaseModel):
    """A walk-forward: state, folds done of total, each fold's windows, state, sweep and chosen params.

    `finished_at` is set once nothing about it changes any more (after a cancel: once the folds' sweeps
    and test run have ended too).
    """

    walkforward_id: str
    user_id: str
    state: SweepState
    counts: dict[str, int] = Field(description="folds: total and done (ended)")
    folds: list[dict[str, Any]]
    search: SweepSearch
    options: WalkForwardOptions
    strategy: str = Field(description="a built-in's name, an uploaded strategy's name, or module:class")
    symbols: list[str]
    interval: str
    failure: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_record(cls, record: WalkForwardRecord) -> WalkForwardStatus:
        spec = record.config.strategy
        if isinstance(spec, str):
            strategy = spec
        elif isinstance(spec, BuiltinStrategy):
            strategy = spec.builtin
        elif isinstance(spec, SourceStrategy):
            strategy = spec.name or "uploaded"
        else:
            strategy = f"{spec.module}:{spec.class_name}"
        return cls(
            walkforward_id=record.walkforward_id,
            user_id=record.user_id,
            state=record.state,
            counts=record.counts(),
            folds=[fold.status() for fold in record.folds],
            search=record.search,
            options=record.options,
            strategy=strategy,
            symbols=list(record.config.symbols),
            interval=record.config.interval,
            failure=record.failure,
            created_at=record.created_at,
            updated_at=record.updated_at,
            finished_at=record.finished_at,
        )


class WalkForwardPage(BaseModel):
    """A page of the caller's walk-forwards, newest first."""

    walkforwards: list[WalkForwardStatus]
    total: int
    limit: int
    offset: int


def fold_outcome(fold: FoldRecord) -> dict[str, Any]:
    """A fold as far as it has come, in the shape of a fold of GET /walkforward/{id}/result: its number,
    windows (ISO-8601 UTC, ends exclusive), chosen params, in-sample metrics (the best trial's) and
    out-of-sample metrics and trade count (those of its test window; None and 0 until it is DONE)."""
    return {
        "fold": fold.number,
        **fold.window().as_json(),
        "params": fold.params,
        "in_sample": fold.in_sample,
        "out_of_sample": fold.out_of_sample,
        "trades": fold.trades,
    }
