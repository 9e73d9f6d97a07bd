"""The portfolio replay: shared cash, one position per symbol, fills with fees and slippage.

`replay_timeline` replays the merged timeline sequentially (like a write-ahead log), so the result never
depends on how the proposals were produced. The sequential part (which entries execute, and their units)
is the C loop of `replay_loop`; fill prices and fee rates before it, and fees, the cash after every
event and the trade columns after it, are numpy.
Accounting (quote currency):
- Long entry: pay units*fill + fee. Exit: receive units*fill - fee.
- Short entry: the notional is set aside as collateral (cash -= units*fill + fee); exit returns
  units*(2*entry - fill) - fee. A short is marked at units*(2*entry - close).
- Sizing: units = size * equity / (fill * (1 + fee rate)), equity = cash + positions marked at the
  last known closes; rounded down to step_size when set. Fill prices move against the trader by
  slippage_bps on market and stop fills, then round to tick_size when set.
- Fees: the taker rate on market and stop fills, the maker rate on limit fills, none on the mark of a
  position still open after the last bar.
- A proposal for a symbol that already holds a position, or whose cost exceeds the cash, or whose
  size rounds to zero, is rejected and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.engine.orchestrator import Timeline
from backtest_core.engine.proposals import LIMIT, MARK
from backtest_core.engine.replay_loop import ReplayInputs, replay_events
from backtest_core.model.config import FeeModel


@dataclass(frozen=True, slots=True)
class TradeColumns:
    """Closed trades as parallel arrays, in closing order: symbol index, proposal seq, direction (+1/-1),
    units, fills, fees, and the timeline positions of the entry and exit events."""

    symbol: np.ndarray
    seq: np.ndarray
    direction: np.ndarray
    units: np.ndarray
    entry_fill: np.ndarray
    exit_fill: np.ndarray
    entry_fee: np.ndarray
    exit_fee: np.ndarray
    entry_event: np.ndarray
    exit_event: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)

    def by_symbol(self) -> np.ndarray:
        """Return the rows ordered by symbol code, each symbol's trades kept in closing order."""
        codes = self.symbol
        if len(codes) and codes.min() >= 0 and codes.max() < 2**16:
            codes = codes.astype(np.uint16)  # numpy's stable sort is a radix sort for 16-bit keys
        order: np.ndarray = np.argsort(codes, kind="stable")
        return order

    def pnl(self) -> np.ndarray:
        """Net profit per trade after both fees: direction * units * (exit - entry) - fees."""
        pnl: np.ndarray = self.direction * self.units * (self.exit_fill - self.entry_fill)
        pnl -= self.entry_fee
        pnl -= self.exit_fee
        return pnl


@dataclass(frozen=True, slots=True)
class ReplayResults:
    """What the replay produced: closed trades as columns, cash after each event, rejections, fees."""

    trades: TradeColumns
    cash_after_event: np.ndarray
    rejected: int
    fees_paid: float
    final_cash: float


def replay_timeline(
    timeline: Timeline,
    cash: float,
    n_symbols: int,
    fees: FeeModel,
    size: float = 1.0,
    slippage_bps: float = 0.0,
    tick_size: float | None = None,
    step_size: float | None = None,
    closes: Sequence[np.ndarray] = (),
) -> ReplayResults:
    """Replay the timeline's events in order and return the closed trades and the cash they left.

    `closes[k]`: symbol k's close at every union bar (0 before its first bar; `equity.closes_on_grid`),
    which values open positions when an entry is sized (needed with more than one symbol). The loop
    only decides which entries execute and their units (it needs the running cash for that); fills
    and fee rates are computed before it, and the fees, the cash after every event (a running sum of
    each event's cash change, `np.add.accumulate`) and the trade columns after it.
    """
    fills = _event_fills(timeline, slippage_bps / 10_000.0, tick_size)
    rates = _event_rates(timeline, fees)
    done = replay_events(
        ReplayInputs(
            timeline.symbol,
            timeline.seq,
            timeline.is_entry,
            timeline.direction,
            fills,
            rates,
            timeline.mark_bar,
            _closes_for(closes, n_symbols),
            float(cash),
            size,
            step_size,
        )
    )
    exits_of = done.exit_of
    entry = np.flatnonzero(exits_of >= 0)
    entry = entry[np.argsort(exits_of[entry], kind="stable")]  # trades in closing order
    trades = _trade_columns(timeline, entry, exits_of[entry], fills, rates, done.units_at)
    cash_after_event, fees_paid = _cash_and_fees(len(timeline), float(cash), trades, rates)
    return ReplayResults(trades, cash_after_event, done.rejected, fees_paid, done.cash)


def _closes_for(closes: Sequence[np.ndarray], n_symbols: int) -> tuple[np.ndarray, ...]:
    """Return the closes the loop marks positions with; one symbol needs none (never two positions)."""
    if len(closes) == n_symbols:
        return tuple(closes)
    if n_symbols == 1 and not closes:
        return (np.zeros(0),)
    raise ValueError(f"expected the closes of all {n_symbols} symbols to value positions, got {len(closes)}")


def _cash_and_fees(
    events: int, cash: float, trades: TradeColumns, rates: np.ndarray
) -> tuple[np.ndarray, float]:
    """Return the cash after every event and the fees paid, as the replay's running sums.

    Each executed event changes the cash by the same expression the loop used (entry: -(cost + fee),
    long exit: units*fill - fee, short exit: units*(2*entry - fill) - fee); other events add 0.0.
    """
    delta = np.zeros(events + 1)
    fee_of = np.zeros(events + 1)
    e, x = trades.entry_event + 1, trades.exit_event + 1
    cost = trades.units * trades.entry_fill
    entry_fee = cost * rates[trades.entry_event]
    delta[e] = -(cost + entry_fee)
    long = trades.direction > 0
    proceeds = np.where(
        long, trades.units * trades.exit_fill, trades.units * (2.0 * trades.entry_fill - trades.exit_fill)
    )
    delta[x] = proceeds - trades.exit_fee
    fee_of[e], fee_of[x] = entry_fee, trades.exit_fee
    delta[0] = cash
    fee_of[0] = 0.0
    return np.add.accumulate(delta)[1:], float(np.add.accumulate(fee_of)[-1])


def _event_fills(timeline: Timeline, slip: float, tick: float | None) -> np.ndarray:
    """Return every event's fill price: slippage against the trader on market and stop fills, then
    rounding to the tick (half to even)."""
    fill = timeline.price
    if slip:
        kind = timeline.price_kind
        buying = np.where(timeline.is_entry, timeline.direction > 0, timeline.direction < 0)
        moved = np.where(buying, fill * (1.0 + slip), fill * (1.0 - slip))
        fill = np.where((kind != LIMIT) & (kind != MARK), moved, fill)
    if tick is not None:
        fill = np.round(fill / tick) * tick
    return np.asarray(fill, np.float64)


def _event_rates(timeline: Timeline, fees: FeeModel) -> np.ndarray:
    """Return every event's fee rate: maker on limit fills, none on end-of-data marks, else taker."""
    kind = timeline.price_kind
    rate = np.where(kind == LIMIT, fees.maker, fees.taker)
    return np.where(~timeline.is_entry & (kind == MARK), 0.0, rate)


def _trade_columns(
    timeline: Timeline,
    entry: np.ndarray,
    exit_: np.ndarray,
    fills: np.ndarray,
    rates: np.ndarray,
    units_at: np.ndarray,
) -> TradeColumns:
    """Gather the closed trades' columns (entry/exit event indices in closing order)."""
    units = units_at[entry]
    exit_fill = fills[exit_]
    return TradeColumns(
        symbol=timeline.symbol[exit_].astype(np.int64),
        seq=timeline.seq[exit_].astype(np.int64),
        direction=timeline.direction[entry].astype(np.int64),
        units=units,
        entry_fill=fills[entry],
        exit_fill=exit_fill,
        entry_fee=units * fills[entry] * rates[entry],
        exit_fee=units * exit_fill * rates[exit_],
        entry_event=entry,
        exit_event=exit_,
    )
