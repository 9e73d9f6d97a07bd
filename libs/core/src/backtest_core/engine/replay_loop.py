"""The replay's sequential loop: which entries execute and with how many units (`_replay.c`).

The loop is the one part of the replay that must run event by event (an entry's size depends on the
cash every earlier event left), so it is compiled: `backtest_core.native._replay`, built by `pip install
libs/core`. Everything before it (fill prices, fee rates) and after it (fees, cash after every event,
the trade columns) is numpy in `portfolio.replay_timeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.native import _replay

CASH_TOLERANCE = 1e-12  # the same constant is in _replay.c


@dataclass(frozen=True, slots=True)
class LoopResult:
    """Units of each executed entry (0 elsewhere), the exit event of each (-1), rejections, final cash."""

    units_at: np.ndarray
    exit_of: np.ndarray
    rejected: int
    cash: float


@dataclass(frozen=True, slots=True)
class ReplayInputs:
    """One replay's events (one entry per event, in timeline order) and its settings.

    `symbol`/`seq`: int64 symbol index and proposal sequence; `is_entry`: bool; `direction`: +1 long,
    -1 short; `fills`, `rates`: float64 fill price and fee rate; `mark_bar`: int64 union bar whose
    closes value the open positions at an entry; `closes`: one float64 array per symbol, its close at
    every union bar (0 before its first bar); `cash` at the start; `size`: fraction of equity per entry;
    `step`: quantity rounding or None.
    """

    symbol: np.ndarray
    seq: np.ndarray
    is_entry: np.ndarray
    direction: np.ndarray
    fills: np.ndarray
    rates: np.ndarray
    mark_bar: np.ndarray
    closes: Sequence[np.ndarray]
    cash: float
    size: float
    step: float | None


def replay_events(inputs: ReplayInputs) -> LoopResult:
    """Replay the events in order and return which entries executed, their units and their exits.

    An entry of a flat symbol executes with units = size * equity / (fill * (1 + rate)) (rounded down
    to `step`: floor(units / step + 1e-9) * step), equity = cash + the open positions marked at the
    closes of its `mark_bar` (a long's units * close, a short's 2 * units * entry - units * close;
    summed in four partial sums, symbol s into sum s % 4), if it has units and its cost plus fee fits
    the cash (within CASH_TOLERANCE of the equity); else it is rejected. An entry of a symbol that
    holds a position is rejected. An exit executes if its symbol's open position belongs to its `seq`.
    Cash: a long entry pays units * fill + fee, its exit receives units * fill - fee; a short entry
    sets its notional aside (cash -= units * fill + fee) and its exit returns units * (2 * entry -
    fill) - fee.
    Raise ValueError for an event the loop cannot value (symbol or mark bar out of range, zero cost).
    """
    i = inputs
    events = len(i.symbol)
    units_at = np.zeros(events)
    exit_of = np.full(events, -1, np.int64)
    i64 = np.int64
    rejected, cash = _replay.replay(
        np.ascontiguousarray(i.symbol, i64),
        np.ascontiguousarray(i.seq, i64),
        np.ascontiguousarray(i.is_entry, np.bool_),
        np.ascontiguousarray(i.direction, i64),
        np.ascontiguousarray(i.fills, np.float64),
        np.ascontiguousarray(i.rates, np.float64),
        np.ascontiguousarray(i.mark_bar, i64),
        tuple(np.ascontiguousarray(c, np.float64) for c in i.closes),
        float(i.cash),
        float(i.size),
        None if i.step is None else float(i.step),
        units_at,
        exit_of,
    )
    return LoopResult(units_at, exit_of, rejected, cash)
