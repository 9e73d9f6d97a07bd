"""Build the equity curve from the cash log and the positions' segments.

`build_equity` runs the C kernel `backtest_core._kernels.equity` when the extension is built; it does
the same additions in the same order per bar as `build_equity_python` (numpy, no loop over bars), the
reference and the fallback, so the two curves are equal bit for bit (signed zeros included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.candles import Candles
from backtest_core.native import KERNELS
from backtest_core.orchestrator import Timeline
from backtest_core.portfolio import ReplayResults


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
class CashLog:
    """The cash after each timeline event, and each event's union bar: what the cash curve is made of."""

    bars: int
    event_bar: np.ndarray
    after_event: np.ndarray
    start_cash: float


@dataclass(frozen=True, slots=True)
class EquityCurve:
    """Equity at the close of every union bar, and which bars held a position (any / per symbol)."""

    equity: np.ndarray
    held_any: np.ndarray
    held_bars: dict[int, int]
    cash_log: CashLog

    @property
    def cash(self) -> np.ndarray:
        """Return the cash at each union bar's close (made on demand: the engine does not need it)."""
        log = self.cash_log
        return _cash_at_bars(log.bars, log.event_bar, log.after_event, log.start_cash)


def build_equity(
    union: np.ndarray,
    candles: Sequence[Candles],
    timeline: Timeline,
    results: ReplayResults,
    start_cash: float,
) -> EquityCurve:
    """Return cash + marked positions at each union bar's close (C kernel, else `build_equity_python`)."""
    curve = _build_equity_native(union, candles, timeline, results, start_cash)
    if curve is None:
        return build_equity_python(union, candles, timeline, results, start_cash)
    return curve


def _build_equity_native(
    union: np.ndarray,
    candles: Sequence[Candles],
    timeline: Timeline,
    results: ReplayResults,
    start_cash: float,
) -> EquityCurve | None:
    """Return the curve from the C kernel, or None when it is not built or the inputs need the twin.

    None (the twin then runs, and raises what it always raised) for unexpected dtypes, symbols or
    event indices out of range, unsorted event bars, or a symbol's positions that overlap.
    """
    tr = results.trades
    ints = (timeline.union_bar, tr.symbol, tr.direction, tr.entry_event, tr.exit_event)
    floats = (results.cash_after_event, tr.units, tr.entry_fill)
    if (
        KERNELS is None
        or any(a.dtype != np.int64 for a in ints)
        or any(a.dtype != np.float64 for a in floats)
    ):
        return None
    n, count = len(union), len(candles)
    closes: list[np.ndarray | None] = [None] * count
    if len(tr):
        if int(tr.symbol.min()) < 0 or int(tr.symbol.max()) >= count:
            return None
        for symbol in np.flatnonzero(np.bincount(tr.symbol, minlength=count)).tolist():
            closes[symbol] = np.ascontiguousarray(closes_on_grid(candles[symbol], union), np.float64)
    equity, held_any = np.empty(n), np.empty(n, bool)
    held_count, order = np.zeros(count, np.int64), np.zeros(count, np.int64)
    status, groups = KERNELS.equity(
        *(np.ascontiguousarray(a) for a in (timeline.union_bar, results.cash_after_event)),
        float(start_cash),
        *(np.ascontiguousarray(a) for a in (tr.symbol, tr.direction, tr.units, tr.entry_fill)),
        *(np.ascontiguousarray(a) for a in (tr.entry_event, tr.exit_event)),
        tuple(closes),
        equity,
        held_any,
        held_count,
        order,
    )
    if status != 0:
        return None
    symbols = order[:groups].tolist()
    held_bars = dict(zip(symbols, held_count[symbols].tolist(), strict=True))
    return EquityCurve(equity, held_any, held_bars, _cash_log(n, timeline, results, start_cash))


def build_equity_python(
    union: np.ndarray,
    candles: Sequence[Candles],
    timeline: Timeline,
    results: ReplayResults,
    start_cash: float,
) -> EquityCurve:
    """Return cash + marked positions at each union bar's close, with numpy.

    Cash at bar g is the cash after the last event on or before g. Each symbol's positions are
    disjoint segments [entry bar, exit bar) of union bars, valued const + coef * close there (const
    is 0 for longs, so it is only added when a short exists); symbols are added in the order of
    their first closed trade. Adding 0.0 outside the segments leaves a bar's equity unchanged.
    """
    n = len(union)
    equity = _cash_at_bars(n, timeline.union_bar, results.cash_after_event, start_cash)
    held_any = np.zeros(n, bool)
    held_bars: dict[int, int] = {}
    tr = results.trades
    cash_log = _cash_log(n, timeline, results, start_cash)
    if len(tr) == 0:
        return EquityCurve(equity, held_any, held_bars, cash_log)
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
    return EquityCurve(equity, held_any, held_bars, cash_log)


def _cash_log(n: int, timeline: Timeline, results: ReplayResults, start_cash: float) -> CashLog:
    return CashLog(n, timeline.union_bar, results.cash_after_event, float(start_cash))


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
