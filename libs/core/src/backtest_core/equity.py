"""Build the equity curve vectorised from the cash log and the positions' segments (no loop over bars)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.candles import Candles
from backtest_core.orchestrator import Timeline
from backtest_core.portfolio import PortfolioResults


def closes_on_grid(candles: Candles, union: np.ndarray) -> np.ndarray:
    """Return the symbol's last known close at each union bar (0 before its first bar)."""
    if len(candles.open_time) == len(union) and np.array_equal(candles.open_time, union):
        return candles.close
    idx = np.searchsorted(candles.open_time, union, side="right") - 1
    return np.where(idx >= 0, candles.close[idx.clip(0)], 0.0)


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Equity at the close of every union bar, and which bars held a position (any / per symbol)."""

    equity: np.ndarray
    cash: np.ndarray
    held_any: np.ndarray
    held_bars: dict[int, int]


def build_equity(
    union: np.ndarray,
    candles: Sequence[Candles],
    timeline: Timeline,
    results: PortfolioResults,
    start_cash: float,
) -> EquityCurve:
    """Return cash + marked positions at each union bar's close."""
    n = len(union)
    grid = np.arange(n)
    count = np.searchsorted(timeline.union_bar, grid, side="right")
    log = results.cash_after_event
    cash = np.where(count > 0, log[(count - 1).clip(0)] if len(log) else start_cash, start_cash)
    equity = cash.copy()
    held_any = np.zeros(n, bool)
    held_bars: dict[int, int] = {}
    by_symbol: dict[int, list[int]] = {}
    for k, t in enumerate(results.trades):
        by_symbol.setdefault(t.symbol, []).append(k)
    for symbol, ks in by_symbol.items():
        trades = [results.trades[k] for k in ks]
        start = timeline.union_bar[[t.entry_event for t in trades]]
        stop = timeline.union_bar[[t.exit_event for t in trades]]
        coef = np.array([t.direction * t.units for t in trades])
        const = np.array([2.0 * t.units * t.entry_fill if t.direction < 0 else 0.0 for t in trades])
        idx = np.searchsorted(start, grid, side="right") - 1
        safe = idx.clip(0)
        active = (idx >= 0) & (grid < stop[safe])
        close = closes_on_grid(candles[symbol], union)
        equity += np.where(active, const[safe] + coef[safe] * close, 0.0)
        held_any |= active
        held_bars[symbol] = int(active.sum())
    return EquityCurve(equity, cash, held_any, held_bars)
