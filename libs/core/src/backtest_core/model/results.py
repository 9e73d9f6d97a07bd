"""What a backtest produces: metrics, per-symbol breakdown, equity curve and every trade; and what a
sweep's chunk of trials produces (TrialsResult: per trial its metrics and returns, no trades)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag

from backtest_core.model.config import BacktestConfig, Frozen
from backtest_core.model.period_returns import PeriodReturn
from backtest_core.model.trade import ExitReason, Trade
from backtest_core.model.trade_log import TradeLog

__all__ = [
    "BacktestResult",
    "EquityPoint",
    "ExitReason",
    "Metrics",
    "PeriodReturn",
    "SymbolMetrics",
    "TaskResult",
    "Trade",
    "TradeLog",
    "TrialOutcome",
    "TrialsResult",
]


class Metrics(Frozen):
    """Performance statistics. Percentages are in percent (12.5 means 12.5%); ratios are annualised.

    Annualisation: `periods_per_year` = 365 days / bar interval (crypto trades every day), so a daily
    backtest uses 365 and a 1-minute one 525,600. Sharpe and Sortino use a zero risk-free rate.
    Ratios that are undefined (no variance, no losing trade, no drawdown) are None. Conventions:
    docs/metrics.md.
    """

    start_equity: float
    final_equity: float
    total_return_pct: float
    cagr_pct: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown_pct: float
    max_drawdown_duration_bars: int
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy: float | None
    avg_win: float | None
    avg_loss: float | None
    trade_count: int
    exposure_pct: float
    fees_paid: float
    bars: int
    periods_per_year: float
    open_trades: int | None = Field(
        default=None,
        description="positions still open after the last bar (marked at its close, in the equity, not a"
        " won or lost trade); None in results made before it was counted",
    )
    buy_and_hold_return_pct: float | None = Field(
        default=None, description="equal-weight buy at each symbol's first close, sell at its last, in %"
    )
    sqn: float | None = Field(default=None, description="system quality number: sqrt(n) * mean / std of pnl")
    kelly_criterion: float | None = Field(
        default=None, description="win rate - loss rate / (average win / |average loss|)"
    )
    probabilistic_sharpe: float | None = Field(
        default=None, description="probability that the true Sharpe ratio exceeds 0 (Bailey, Lopez de Prado)"
    )
    alpha_pct: float | None = Field(
        default=None,
        description="annualised alpha against buy-and-hold of the same symbols over the same bars, in %",
    )
    beta: float | None = Field(
        default=None, description="beta of the per-bar returns against buy-and-hold of the same symbols"
    )


class SymbolMetrics(Frozen):
    """One symbol's share of the portfolio's trading."""

    symbol: str
    trade_count: int
    win_rate_pct: float | None
    net_pnl: float
    profit_factor: float | None
    fees_paid: float
    exposure_pct: float


class EquityPoint(Frozen):
    """Portfolio equity (cash + positions marked at the close) at the close of a bar."""

    time: datetime
    equity: float


class BacktestResult(Frozen):
    """The whole outcome of one backtest; the equity curve may be downsampled to `equity_points_max`."""

    config: BacktestConfig
    engine_version: str
    metrics: Metrics
    per_symbol: list[SymbolMetrics]
    equity_curve: list[EquityPoint]
    trades: TradeLog = Field(
        description="every trade in closing order, a position still open after the last bar included"
        " (exit_reason end_of_data, marked at the last close); serialised as a list of Trade objects"
    )
    rejected_proposals: int = Field(description="proposals skipped for lack of cash or an open position")
    monthly_returns: list[PeriodReturn] = Field(
        default_factory=list, description="the equity's return in each calendar month (UTC) holding a bar"
    )
    yearly_returns: list[PeriodReturn] = Field(
        default_factory=list, description="the equity's return in each calendar year (UTC) holding a bar"
    )


def pack_returns(returns: np.ndarray) -> str:
    """Return float64 returns as base64 of their little-endian bytes (exact, ~11 bytes a value as JSON)."""
    return base64.b64encode(np.ascontiguousarray(returns, dtype="<f8").tobytes()).decode("ascii")


def unpack_returns(packed: str) -> np.ndarray:
    """Return the float64 array `pack_returns` packed."""
    returns: np.ndarray = np.frombuffer(base64.b64decode(packed), dtype="<f8").astype(np.float64)
    return returns


class TrialOutcome(Frozen):
    """How one trial of a sweep's chunk ended: SUCCESS with its metrics and returns, SKIPPED when the
    strategy's validation refused its params, FAILURE with the reason."""

    trial: int = Field(ge=0)
    state: Literal["SUCCESS", "FAILURE", "SKIPPED"]
    metrics: Metrics | None = None
    returns: str | None = Field(default=None, description="its equity curve's returns, packed")
    reason: str | None = Field(default=None, max_length=10_000)


class TrialsResult(Frozen):
    """The result of a task that ran a chunk of a sweep's trials: one outcome per trial, in their order.

    Trades and equity curves are left out (a chunk's trials are compared by their metrics and returns);
    a single backtest of a trial's config gives its trades.
    """

    kind: Literal["trials"] = "trials"
    engine_version: str
    outcomes: list[TrialOutcome]


def _result_kind(value: object) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "trials" if kind == "trials" else "backtest"


def backtest_result(result: BacktestResult | TrialsResult) -> BacktestResult:
    """The result as a backtest's; ValueError for a sweep chunk's (no user reads a chunk as a backtest)."""
    if isinstance(result, TrialsResult):
        raise ValueError("this task ran a sweep's chunk of trials: its result is the sweep's trials")
    return result


# What a task's success carries: a backtest's result, or a sweep chunk's trials (told apart by `kind`, so a
# backtest's result is validated once, as a BacktestResult).
TaskResult = Annotated[
    Annotated[BacktestResult, Tag("backtest")] | Annotated[TrialsResult, Tag("trials")],
    Discriminator(_result_kind),
]
