"""What a backtest produces: metrics, per-symbol breakdown, equity curve and every trade."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from backtest_core.config import BacktestConfig, Frozen
from backtest_core.period_returns import PeriodReturn
from backtest_core.trade import ExitReason, Trade
from backtest_core.trade_log import TradeLog

__all__ = [
    "BacktestResult",
    "EquityPoint",
    "ExitReason",
    "Metrics",
    "PeriodReturn",
    "SymbolMetrics",
    "Trade",
    "TradeLog",
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
