"""Build the equity curve vectorised from the cash log and the positions' segments (no loop over bars)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.candles import Candles
from backtest_core.orchestrator import Timeline
from backtest_core.portfolio import ReplayResults


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
    results: ReplayResults,
    start_cash: float,
) -> EquityCurve:
    """Return cash + marked positions at each union bar's close.

    Cash at bar g is the cash after the last event on or before g. Each symbol's positions are
    disjoint segments [entry bar, exit bar) of union bars, valued const + coef * close there; the
    symbols are added in the order of their first closed trade.
    """
    n = len(union)
    cash = _cash_at_bars(n, timeline.union_bar, results.cash_after_event, start_cash)
    equity = cash.copy()
    held_any = np.zeros(n, bool)
    held_bars: dict[int, int] = {}
    tr = results.trades
    if len(tr) == 0:
        return EquityCurve(equity, cash, held_any, held_bars)
    order = np.argsort(tr.symbol, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(tr.symbol[order])) + 1)
    groups.sort(key=lambda g: int(g[0]))
    entry_bar = timeline.union_bar[tr.entry_event]
    exit_bar = timeline.union_bar[tr.exit_event]
    for ks in groups:
        symbol = int(tr.symbol[ks[0]])
        direction, units = tr.direction[ks], tr.units[ks]
        coef = direction * units
        const = np.where(direction < 0, 2.0 * units * tr.entry_fill[ks], 0.0)
        which, bars = _segment_bars(entry_bar[ks], exit_bar[ks])
        close = closes_on_grid(candles[symbol], union)
        equity[bars] += const[which] + coef[which] * close[bars]
        held_any[bars] = True
        held_bars[symbol] = len(bars)
    return EquityCurve(equity, cash, held_any, held_bars)


def _cash_at_bars(n: int, event_bar: np.ndarray, log: np.ndarray, start_cash: float) -> np.ndarray:
    """Return the cash after the last event at or before each bar (start_cash before any event)."""
    last = np.full(n, -1, np.int64)
    if len(event_bar):
        ends = np.flatnonzero(np.append(event_bar[1:] != event_bar[:-1], True))
        last[event_bar[ends]] = ends
        np.maximum.accumulate(last, out=last)
    return np.concatenate(([float(start_cash)], log))[last + 1]


def _segment_bars(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (segment index, bar) for every bar of the sorted disjoint segments [start, stop)."""
    lengths = np.maximum(stop - start, 0)
    total = int(lengths.sum())
    which = np.repeat(np.arange(len(start)), lengths)
    offsets = np.cumsum(lengths) - lengths
    bars = np.arange(total) + np.repeat(start - offsets, lengths)
    return which, bars
