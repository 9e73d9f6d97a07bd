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

from backtest_core.candles import interval_ns
from backtest_core.native import KERNELS

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


def sharpe_ratio(returns: np.ndarray, ppy: float) -> float | None:
    """Return the annualised Sharpe ratio (zero risk-free), None without variance beyond rounding."""
    if len(returns) < 2:
        return None
    mean, sd, _ = return_moments(returns)
    if not sd > DEGENERATE_REL * abs(mean) or not math.isfinite(sd):
        return None
    return mean / sd * math.sqrt(ppy)


def sortino_ratio(returns: np.ndarray, ppy: float) -> float | None:
    """Return the annualised Sortino ratio (zero target), None without downside beyond rounding."""
    if len(returns) < 2:
        return None
    mean, _, downside = return_moments(returns)
    if not downside > DEGENERATE_REL * abs(mean) or not math.isfinite(downside):
        return None
    return mean / downside * math.sqrt(ppy)


def return_moments(returns: np.ndarray) -> tuple[float, float, float]:
    """Return (mean, sample standard deviation, downside deviation) of per-bar returns (>= 2 values).

    Exactly numpy's `np.mean`, `np.std(ddof=1)` and `sqrt(np.mean(np.minimum(r, 0) ** 2))`: the C
    kernel `backtest_core._kernels.moments` sums in numpy's pairwise order for a contiguous float64
    vector; anything else goes to `return_moments_python`, the reference.
    """
    if (
        KERNELS is None
        or not isinstance(returns, np.ndarray)
        or returns.ndim != 1
        or returns.dtype != np.float64
        or not returns.flags.c_contiguous
        or len(returns) < 2
    ):
        return return_moments_python(returns)
    mean, sd, downside = KERNELS.moments(returns)
    return mean, sd, downside


def return_moments_python(returns: np.ndarray) -> tuple[float, float, float]:
    """Return `return_moments` computed with numpy."""
    sd = float(np.std(returns, ddof=1))
    down = np.minimum(returns, 0.0)
    down *= down
    return float(np.mean(returns)), sd, math.sqrt(float(np.mean(down)))


def max_drawdown(equity: np.ndarray) -> tuple[float, int]:
    """Return (largest fall below the running peak in percent, longest underwater stretch in bars).

    One pass in C (`backtest_core._kernels.drawdown`) for a float64 vector, with the same operations
    as `max_drawdown_python`, the reference and the fallback.
    """
    if (
        KERNELS is None
        or not isinstance(equity, np.ndarray)
        or equity.ndim != 1
        or equity.dtype != np.float64
        or len(equity) == 0
    ):
        return max_drawdown_python(equity)
    fall, longest = KERNELS.drawdown(np.ascontiguousarray(equity))
    worst = fall * 100.0
    return max(worst, 0.0), longest


def max_drawdown_python(equity: np.ndarray) -> tuple[float, int]:
    """Return `max_drawdown` computed with numpy."""
    if len(equity) == 0:
        return 0.0, 0
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        if (peak > 0).all():
            dd = equity / peak
            np.subtract(1.0, dd, out=dd)
        else:
            dd = np.where(peak > 0, 1.0 - equity / peak, 0.0)
    worst = float(dd.max()) * 100.0
    under = equity < peak
    if not under.any():
        return max(worst, 0.0), 0
    # The longest run of consecutive underwater bars: the widest gap between bars at a peak.
    above = np.flatnonzero(~under)
    gaps = np.diff(np.concatenate(([-1], above, [len(equity)])))
    return max(worst, 0.0), int(gaps.max()) - 1


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


def sequential_sum(values: Values) -> float:
    """Return ((0.0 + v0) + v1) + ... summed left to right (0.0 when empty).

    The float arithmetic of CPython 3.11's sum(), pinned (Python 3.12's sum() compensates rounding,
    which would change results with the interpreter version). In C (`_kernels.folds`) when built,
    else `sequential_sum_python`.
    """
    a = np.asarray(values, np.float64)
    if KERNELS is None or a.ndim != 1:
        return sequential_sum_python(a)
    total: float = KERNELS.folds(np.ascontiguousarray(a))[0]
    return total


def sequential_sum_python(values: Values) -> float:
    """Return `sequential_sum` computed with numpy (a left fold is `np.add.accumulate`)."""
    a = np.asarray(values, np.float64)
    if len(a) == 0:
        return 0.0
    return float(np.add.accumulate(np.concatenate(([0.0], a)))[-1])


@dataclass(frozen=True, slots=True)
class PnlFolds:
    """Left-to-right sums (from 0.0) of all trade pnls, of those > 0 and of those < 0, and the counts."""

    total: float
    wins: float
    losses: float
    count: int
    win_count: int
    loss_count: int


def pnl_folds(pnls: Values) -> PnlFolds:
    """Return the sums and counts every trade statistic needs, in one C pass when built."""
    a = np.asarray(pnls, np.float64)
    if KERNELS is None or a.ndim != 1:
        return pnl_folds_python(a)
    total, wins, losses, win_count, loss_count = KERNELS.folds(np.ascontiguousarray(a))
    return PnlFolds(total, wins, losses, len(a), win_count, loss_count)


def pnl_folds_python(pnls: Values) -> PnlFolds:
    """Return `pnl_folds` computed with numpy."""
    a = np.asarray(pnls, np.float64)
    wins, losses = a[a > 0], a[a < 0]
    total, win_sum, loss_sum = (sequential_sum_python(v) for v in (a, wins, losses))
    return PnlFolds(total, win_sum, loss_sum, len(a), len(wins), len(losses))


def win_rate_pct(pnls: Values) -> float | None:
    """Return the share of trades with pnl > 0 in percent, None without trades."""
    f = pnl_folds(pnls)
    return None if f.count == 0 else 100.0 * f.win_count / f.count


def profit_factor(pnls: Values) -> float | None:
    """Return gross profit / gross loss, None without losing trades."""
    f = pnl_folds(pnls)
    loss = -f.losses
    return None if loss <= 0 else f.wins / loss


def expectancy(pnls: Values) -> float | None:
    """Return the mean net pnl per trade (quote currency), None without trades."""
    f = pnl_folds(pnls)
    return None if f.count == 0 else f.total / f.count


def average_win(pnls: Values) -> float | None:
    """Return the mean pnl of winning trades, None without any."""
    f = pnl_folds(pnls)
    return f.wins / f.win_count if f.win_count else None


def average_loss(pnls: Values) -> float | None:
    """Return the mean pnl of losing trades (a negative number), None without any."""
    f = pnl_folds(pnls)
    return f.losses / f.loss_count if f.loss_count else None


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
    closed = a[~is_open]
    return TradeStatistics(
        trade_count=len(closed),
        open_trades=int(is_open.sum()),
        win_rate_pct=win_rate_pct(closed),
        profit_factor=profit_factor(closed),
        expectancy=expectancy(closed),
        avg_win=average_win(closed),
        avg_loss=average_loss(closed),
    )
