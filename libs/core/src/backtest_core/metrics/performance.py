"""Performance statistics as pure functions of the equity curve and the closed trades.

Units: percentages in percent (12.5 = 12.5%); `max_drawdown_pct` is the largest peak-to-trough fall
as a positive number (23.0 = equity fell 23% below its running peak). Annualisation: periods per year =
365 days / bar interval (crypto trades every day); Sharpe and Sortino use per-bar simple returns of
the equity curve and a zero risk-free rate, Sharpe with the sample standard deviation (ddof=1), Sortino
with the downside deviation sqrt(mean(min(r, 0)^2)). CAGR uses bars / periods_per_year years (the start
equity is the equity before the first bar, as vectorbt's annualised return). Undefined values (no
variance, no losing trade, no drawdown, no trades) are None; so is a Sharpe whose standard deviation, or
a Sortino whose downside deviation, is below DEGENERATE_REL of the mean's magnitude (rounding, not risk).
Conventions and their peers: docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.model.candles import interval_ns
from backtest_core.native import _kernels

YEAR_NS = 365 * 86_400 * 1_000_000_000
DEGENERATE_REL = 1e-12  # a dispersion below this fraction of |mean| is rounding noise: no ratio


def periods_per_year(interval: str) -> float:
    """Return the number of bars of this interval in 365 days (1d -> 365, 1m -> 525,600)."""
    return YEAR_NS / interval_ns(interval)


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Return simple per-bar returns r[i] = equity[i+1] / equity[i] - 1."""
    if len(equity) < 2:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r: np.ndarray = equity[1:] / equity[:-1]
    r -= 1.0
    return r


def equity_returns(equity: np.ndarray) -> np.ndarray:
    """The returns between consecutive equity values, non-finite ones (an equity of 0) as 0."""
    returns: np.ndarray = np.nan_to_num(bar_returns(equity), nan=0.0, posinf=0.0, neginf=0.0)
    return returns


def sharpe_ratio(returns: np.ndarray, ppy: float) -> float | None:
    """Return the annualised Sharpe ratio (zero risk-free), None without variance beyond rounding."""
    if len(returns) < 2:
        return None
    m = return_moments(returns)
    if not m.sd > DEGENERATE_REL * abs(m.mean) or not math.isfinite(m.sd):
        return None
    return m.mean / m.sd * math.sqrt(ppy)


def sortino_ratio(returns: np.ndarray, ppy: float) -> float | None:
    """Return the annualised Sortino ratio (zero target), None without downside beyond rounding."""
    if len(returns) < 2:
        return None
    m = return_moments(returns)
    if not m.downside > DEGENERATE_REL * abs(m.mean) or not math.isfinite(m.downside):
        return None
    return m.mean / m.downside * math.sqrt(ppy)


@dataclass(frozen=True, slots=True)
class ReturnMoments:
    """Moments of per-bar returns r, with d = r - mean and m_k = sum(d^k) / n (each sum pairwise).

    `sd`: sample standard deviation sqrt(sum(d^2) / (n - 1)); `downside`: sqrt(sum(min(r, 0)^2) / n);
    `skew`: m_3 / m_2^1.5 and `kurt`: m_4 / m_2^2 (non-excess), from population moments.
    """

    mean: float
    sd: float
    downside: float
    skew: float
    kurt: float


def return_moments(returns: np.ndarray) -> ReturnMoments:
    """Return the moments of per-bar returns (>= 2 values; C kernel `_kernels.moments`, one call)."""
    return ReturnMoments(*_kernels.moments(np.ascontiguousarray(returns, np.float64)))


def max_drawdown(equity: np.ndarray) -> tuple[float, int]:
    """Return (largest fall below the running peak in percent, longest underwater stretch in bars).

    The fall at a bar is 1 - equity / running peak (0 while the peak is <= 0); underwater means below
    the running peak. (0.0, 0) for an empty curve; NaN for a curve holding a NaN. C kernel
    `_kernels.drawdown`, one pass.
    """
    if len(equity) == 0:
        return 0.0, 0
    fall, longest = _kernels.drawdown(np.ascontiguousarray(equity, np.float64))
    return fall * 100.0, longest


def cagr_pct(start: float, final: float, periods: int, ppy: float) -> float | None:
    """Return the growth from start to final over `periods` bars, annualised, in percent (or None)."""
    years = periods / ppy
    if years <= 0 or start <= 0 or final <= 0:
        return None
    return float(((final / start) ** (1.0 / years) - 1.0) * 100.0)


def calmar_ratio(cagr: float | None, max_dd_pct: float) -> float | None:
    """Return CAGR / max drawdown (both percent), None when either is undefined or the drawdown is 0."""
    if cagr is None or max_dd_pct <= 0:
        return None
    return cagr / max_dd_pct


Values = Sequence[float] | np.ndarray


@dataclass(frozen=True, slots=True)
class PnlSums:
    """Sums (numpy's pairwise `sum`) of all trade pnls, of those > 0 and of those < 0, and the counts."""

    total: float
    wins: float
    losses: float
    count: int
    win_count: int
    loss_count: int

    @classmethod
    def of(cls, pnls: Values) -> PnlSums:
        """Return the sums and counts every trade statistic needs."""
        a = np.asarray(pnls, np.float64)
        wins, losses = a[a > 0], a[a < 0]
        return cls(float(a.sum()), float(wins.sum()), float(losses.sum()), len(a), len(wins), len(losses))

    @property
    def win_rate_pct(self) -> float | None:
        """The share of trades with pnl > 0 in percent, None without trades."""
        return None if self.count == 0 else 100.0 * self.win_count / self.count

    @property
    def profit_factor(self) -> float | None:
        """Gross profit / gross loss, None without losing trades."""
        return None if self.loss_count == 0 else self.wins / -self.losses

    @property
    def expectancy(self) -> float | None:
        """The mean net pnl per trade (quote currency), None without trades."""
        return None if self.count == 0 else self.total / self.count

    @property
    def average_win(self) -> float | None:
        """The mean pnl of winning trades, None without any."""
        return self.wins / self.win_count if self.win_count else None

    @property
    def average_loss(self) -> float | None:
        """The mean pnl of losing trades (a negative number), None without any."""
        return self.losses / self.loss_count if self.loss_count else None


def win_rate_pct(pnls: Values) -> float | None:
    """Return the share of trades with pnl > 0 in percent, None without trades."""
    return PnlSums.of(pnls).win_rate_pct


def profit_factor(pnls: Values) -> float | None:
    """Return gross profit / gross loss, None without losing trades."""
    return PnlSums.of(pnls).profit_factor


@dataclass(frozen=True, slots=True)
class TradeStatistics:
    """Statistics of the closed trades (vectorbt's default) and the count of those still open."""

    trade_count: int
    open_trades: int
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy: float | None
    avg_win: float | None
    avg_loss: float | None


def trade_statistics(pnls: Values, still_open: np.ndarray) -> TradeStatistics:
    """Return the statistics of the closed trades; an open one is counted apart, neither won nor lost."""
    a = np.asarray(pnls, np.float64)
    is_open = np.asarray(still_open, bool)
    if is_open.shape != a.shape:
        raise ValueError(f"expected one still-open flag per trade ({len(a)}), got {len(is_open)}")
    sums = PnlSums.of(a[~is_open])
    return TradeStatistics(
        trade_count=sums.count,
        open_trades=int(is_open.sum()),
        win_rate_pct=sums.win_rate_pct,
        profit_factor=sums.profit_factor,
        expectancy=sums.expectancy,
        avg_win=sums.average_win,
        avg_loss=sums.average_loss,
    )
