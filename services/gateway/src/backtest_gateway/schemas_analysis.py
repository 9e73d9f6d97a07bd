"""The public shapes of the analysis endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backtest_gateway.ports import StrategyRef

TASK_ID_PATTERN = r"^[0-9a-f]{32}$"


class PortfolioItem(BaseModel):
    """One finished backtest of yours and its weight (> 0; weights are normalised to sum 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str = Field(pattern=TASK_ID_PATTERN)
    weight: float = Field(gt=0, le=1e6)


class PortfolioRequest(BaseModel):
    """Backtests to combine, each with a weight, and the capital the combined curve starts with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: list[PortfolioItem] = Field(min_length=1, max_length=50)
    capital: float = Field(default=1_000_000.0, gt=0, le=1e15, description="quote currency")

    @field_validator("items")
    @classmethod
    def _unique(cls, items: list[PortfolioItem]) -> list[PortfolioItem]:
        ids = [i.task_id for i in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task ids must be unique, was {ids}")
        return items


class CombinedPoint(BaseModel):
    """The combined portfolio's value at one time (quote currency)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    equity: float


class PortfolioAnalysis(BaseModel):
    """The combined curve (union of times, each part forward-filled), correlation of per-step returns
    over the steps both backtests cover (rows and columns in `task_ids` order; null where undefined),
    and the combined metrics."""

    model_config = ConfigDict(frozen=True)

    task_ids: list[str]
    weights: list[float] = Field(description="the weights used: the requested ones normalised to sum 1")
    requested_weights: list[float] = Field(description="the weights as sent")
    equity_curve: list[CombinedPoint]
    correlation: list[list[float | None]] = Field(description="pairwise complete: on each pair's overlap")
    correlation_periods: list[list[int]] = Field(
        description="how many per-step returns each pair has in common (the overlap its correlation uses)"
    )
    metrics: dict[str, float | int | None]


class RankedBacktest(BaseModel):
    """One finished backtest with its metrics (see BacktestResult.metrics for units)."""

    model_config = ConfigDict(frozen=True)

    rank: int = Field(ge=1)
    task_id: str
    user_id: str
    strategy: str = Field(description="built-in name, module:class, or user:<name>@v<version>")
    symbols: list[str]
    interval: str | None
    value: float = Field(description="the ranking metric's value")
    metrics: dict[str, float | int | None]
    strategy_ref: StrategyRef | None = None
    created_at: datetime | None = None


class PerformancePage(BaseModel):
    """Your finished backtests ranked by `metric`; `next_offset` is None on the last page."""

    model_config = ConfigDict(frozen=True)

    metric: str
    descending: bool
    items: list[RankedBacktest]
    total: int = Field(ge=0)
    limit: int
    offset: int
    next_offset: int | None
