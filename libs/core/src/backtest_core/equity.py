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
    disjoint segments [entry bar, exit bar) of union bars, valued const + coef * close there (const
    is 0 for longs, so it is only added when a short exists); symbols are added in the order of
    their first closed trade. Adding 0.0 outside the segments leaves a bar's equity unchanged.
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
        lengths = _gap_and_segment_lengths(entry_bar[ks], exit_bar[ks], n)
        held = np.repeat(np.arange(len(lengths)) % 2 == 1, lengths)
        value = np.zeros(len(lengths))  # per gap (0) and per position segment (its coefficient)
        value[1::2] = direction * units
        marked = np.repeat(value, lengths)
        close = closes_on_grid(candles[symbol], union)
        np.multiply(marked, close, out=marked, where=held)
        if (direction < 0).any():  # a short also holds its collateral: const + coef * close
            value[1::2] = np.where(direction < 0, 2.0 * units * tr.entry_fill[ks], 0.0)
            np.add(np.repeat(value, lengths), marked, out=marked, where=held)
        equity += marked  # + 0.0 outside the positions
        held_any |= held
        held_bars[symbol] = int(lengths[1::2].sum())
    return EquityCurve(equity, cash, held_any, held_bars)


def _cash_at_bars(n: int, event_bar: np.ndarray, log: np.ndarray, start_cash: float) -> np.ndarray:
    """Return the cash after the last event at or before each bar (start_cash before any event)."""
    after = np.zeros(n, np.int64)  # 1 + index of the last event at or before the bar; 0 = none
    if len(event_bar):
        ends = np.flatnonzero(np.append(event_bar[1:] != event_bar[:-1], True))
        after[event_bar[ends]] = ends + 1
        np.maximum.accumulate(after, out=after)
    return np.concatenate(([float(start_cash)], log))[after]


def _gap_and_segment_lengths(start: np.ndarray, stop: np.ndarray, n: int) -> np.ndarray:
    """Return the lengths of gap 0, segment 0, gap 1, ..., gap K that tile [0, n) (sorted, disjoint)."""
    bounds = np.empty(2 * len(start) + 2, np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1:2] = start
    bounds[2:-1:2] = np.maximum(stop, start)
    return np.diff(bounds)
