"""Build the equity curve from the cash log and the positions' segments (the C kernel `_kernels.equity`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.engine.orchestrator import Timeline
from backtest_core.engine.portfolio import ReplayResults
from backtest_core.model.candles import Candles
from backtest_core.native import _kernels


def closes_on_grid(candles: Candles, union: np.ndarray) -> np.ndarray:
    """Return the symbol's last known close at each union bar (0 before its first bar)."""
    same = candles.open_time is union or (
        len(candles.open_time) == len(union) and np.array_equal(candles.open_time, union)
    )
    if same:
        return candles.close
    idx = np.searchsorted(candles.open_time, union, side="right") - 1
    return np.where(idx >= 0, candles.close[idx.clip(0)], 0.0)


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Equity at the close of every union bar, and which bars held a position (any / per symbol)."""

    equity: np.ndarray
    held_any: np.ndarray
    held_bars: dict[int, int]


def build_equity(
    union: np.ndarray,
    closes: Sequence[np.ndarray],
    timeline: Timeline,
    results: ReplayResults,
    start_cash: float,
) -> EquityCurve:
    """Return cash + marked positions at each union bar's close, and which bars held a position.

    `closes[k]`: symbol k's `closes_on_grid`. Cash at bar g is the cash after the last event on or
    before g (`start_cash` before any). Each
    symbol's positions are disjoint segments [entry bar, exit bar) of union bars, where a long adds
    units * close and a short 2 * units * entry - units * close (its collateral less the buy-back) to
    the cash. Raise ValueError for inputs the replay never makes (unsorted event bars, overlapping
    positions of one symbol).
    """
    tr = results.trades
    n, count = len(union), len(closes)
    equity, held_any = np.empty(n), np.empty(n, bool)
    held_count, order = np.zeros(count, np.int64), np.zeros(count, np.int64)
    i64, f64 = np.int64, np.float64
    groups = _kernels.equity(
        np.ascontiguousarray(timeline.union_bar, i64),
        np.ascontiguousarray(results.cash_after_event, f64),
        float(start_cash),
        np.ascontiguousarray(tr.symbol, i64),
        np.ascontiguousarray(tr.direction, i64),
        np.ascontiguousarray(tr.units, f64),
        np.ascontiguousarray(tr.entry_fill, f64),
        np.ascontiguousarray(tr.entry_event, i64),
        np.ascontiguousarray(tr.exit_event, i64),
        tuple(np.ascontiguousarray(c, f64) for c in closes),
        equity,
        held_any,
        held_count,
        order,
    )
    symbols = order[:groups].tolist()
    held_bars = dict(zip(symbols, held_count[symbols].tolist(), strict=True))
    return EquityCurve(equity, held_any, held_bars)
