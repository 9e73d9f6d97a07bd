"""Combine finished backtests into one portfolio: aligned equity curves, return correlations, metrics.

Pure functions of the backtests' equity curves (numpy; times in int64 UTC nanoseconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import backtest_core.metrics.performance as m
import numpy as np

YEAR_NS = m.YEAR_NS


@dataclass(frozen=True, slots=True)
class Curve:
    """One backtest's equity curve: strictly increasing times (UTC ns) and equity (quote currency)."""

    times: np.ndarray
    equity: np.ndarray


@dataclass(frozen=True, slots=True)
class Combined:
    """The portfolio: union of all times, each curve's growth on them, the weighted value, statistics.

    `correlation[i][j]` is over the `overlap[i][j]` per-step returns both curves have (pairwise complete).
    """

    times: np.ndarray
    growth: np.ndarray  # shape (curves, times): equity / first equity, flat at 1 before a curve starts
    value: np.ndarray
    correlation: list[list[float | None]]
    overlap: list[list[int]]
    periods_per_year: float


def align(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Return the union of times and each curve's growth factor on it.

    Before its first point a curve counts as uninvested (growth 1.0); between points its last value holds
    (forward fill); after its last point its final value holds.
    """
    times = np.unique(np.concatenate([c.times for c in curves]))
    growth = np.empty((len(curves), len(times)))
    for row, curve in enumerate(curves):
        factor = curve.equity / curve.equity[0]
        index = np.searchsorted(curve.times, times, side="right") - 1
        growth[row] = np.where(index >= 0, factor[np.maximum(index, 0)], 1.0)
    return times, growth


def live_steps(curves: Sequence[Curve], times: np.ndarray) -> np.ndarray:
    """Return, per curve, which steps times[k-1] -> times[k] lie within its first and last point."""
    starts, ends = times[:-1], times[1:]
    return np.array([(starts >= c.times[0]) & (ends <= c.times[-1]) for c in curves], dtype=bool)


def correlation(
    growth: np.ndarray, live: np.ndarray | None = None
) -> tuple[list[list[float | None]], list[list[int]]]:
    """Pearson correlation of per-step simple returns over the steps both curves are live, and their count.

    `live` (curves x steps, default all) marks the steps within each curve's own span, so days before a
    curve starts or after it ends are not counted as zero returns. None where fewer than 2 common steps
    or a curve has no variance on them.
    """
    returns = np.array([m.bar_returns(row) for row in growth])
    n = len(growth)
    mask = np.ones(returns.shape, dtype=bool) if live is None else live
    out: list[list[float | None]] = [[None] * n for _ in range(n)]
    counts = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            both = mask[i] & mask[j]
            counts[i][j] = counts[j][i] = int(both.sum())
            if counts[i][j] < 2:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                value = float(np.corrcoef(returns[i][both], returns[j][both])[0, 1])
            out[i][j] = out[j][i] = value if math.isfinite(value) else None
    return out, counts


def combine(curves: Sequence[Curve], weights: Sequence[float], capital: float) -> Combined:
    """Weight the aligned growth curves (weights normalised to sum 1) into one curve starting at `capital`.

    The portfolio is rebalanced never: each part keeps its initial share and grows with its backtest.
    Periods per year = 365 days / the median spacing of the union of times.
    """
    times, growth = align(curves)
    share = np.asarray(weights, dtype=float)
    share = share / share.sum()
    value = capital * (share @ growth)
    spacing = float(np.median(np.diff(times))) if len(times) > 1 else float(YEAR_NS)
    matrix, overlap = correlation(growth, live_steps(curves, times))
    return Combined(times, growth, value, matrix, overlap, YEAR_NS / spacing)


def statistics(value: np.ndarray, ppy: float) -> dict[str, float | int | None]:
    """Headline statistics of a combined curve with `backtest_core.metrics.performance` (percent where named
    _pct)."""
    returns = m.bar_returns(value)
    max_dd, dd_bars = m.max_drawdown(value)
    cagr = m.cagr_pct(float(value[0]), float(value[-1]), len(value), ppy)  # over the bars, as the engine
    return {
        "start_equity": float(value[0]),
        "final_equity": float(value[-1]),
        "total_return_pct": (float(value[-1]) / float(value[0]) - 1.0) * 100.0,
        "cagr_pct": cagr,
        "sharpe": m.sharpe_ratio(returns, ppy),
        "sortino": m.sortino_ratio(returns, ppy),
        "calmar": m.calmar_ratio(cagr, max_dd),
        "max_drawdown_pct": max_dd,
        "max_drawdown_duration_bars": dd_bars,
        "bars": len(value),
        "periods_per_year": ppy,
    }
