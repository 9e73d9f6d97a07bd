"""The portfolio manager: shared cash, one position per symbol, fills with fees and slippage.

It replays the merged timeline sequentially (like a write-ahead log), so the result never depends on
how the proposals were produced. `PortfolioManager` is the readable reference (try_execute, on_bar,
get_results); `replay_timeline` is the engine's hot path: the same arithmetic in one loop with no
object per event (`replay_loop`: in C when built, else Python, bit-identical), returning the trades as
columns (property tests check that all of them agree exactly).
Accounting (quote currency):
- Long entry: pay units*fill + fee. Exit: receive units*fill - fee.
- Short entry: the notional is set aside as collateral (cash -= units*fill + fee); exit returns
  units*(2*entry - fill) - fee. A short is marked at units*(2*entry - close).
- Sizing: units = size * equity / (fill * (1 + fee rate)), equity = cash + positions marked at the
  last known closes; rounded down to step_size when set. Fill prices move against the trader by
  slippage_bps on market and stop fills, then round to tick_size when set.
- A proposal for a symbol that already holds a position, or whose cost exceeds the cash, or whose
  size rounds to zero, is rejected and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest_core.config import FeeModel
from backtest_core.orchestrator import Timeline
from backtest_core.proposals import LIMIT, MARK, TradeEvent
from backtest_core.replay_loop import CASH_TOLERANCE, ReplayInputs, replay_events

_CASH_TOLERANCE = CASH_TOLERANCE


@dataclass(frozen=True, slots=True)
class ExecutedTrade:
    """A closed position: symbol index, proposal seq, direction, units, fills, fees, event positions."""

    symbol: int
    seq: int
    direction: int
    units: float
    entry_fill: float
    exit_fill: float
    entry_fee: float
    exit_fee: float
    entry_event: int
    exit_event: int

    @property
    def pnl(self) -> float:
        """Net profit in quote currency, after both fees."""
        return (
            self.direction * self.units * (self.exit_fill - self.entry_fill) - self.entry_fee - self.exit_fee
        )


@dataclass(frozen=True, slots=True)
class PortfolioResults:
    """What the replay produced: closed trades, cash after each event, rejections, fees."""

    trades: list[ExecutedTrade]
    cash_after_event: np.ndarray
    rejected: int
    fees_paid: float
    final_cash: float


@dataclass(frozen=True, slots=True)
class TradeColumns:
    """Closed trades as parallel arrays, in closing order (row k = the k-th ExecutedTrade)."""

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

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[float]]) -> TradeColumns:
        """Build the columns from per-field lists in field order (symbol, seq, ..., exit_event)."""
        ints, floats = np.int64, np.float64
        kinds = (ints, ints, ints, floats, floats, floats, floats, floats, ints, ints)
        return cls(*(np.array(col, kind) for col, kind in zip(rows, kinds, strict=True)))

    @classmethod
    def from_trades(cls, trades: Sequence[ExecutedTrade]) -> TradeColumns:
        """Build the columns from ExecutedTrade objects."""
        names = cls.__dataclass_fields__
        return cls.from_lists([[getattr(t, name) for t in trades] for name in names])

    def by_symbol(self) -> np.ndarray:
        """Return the rows ordered by symbol code, each symbol's trades kept in closing order."""
        codes = self.symbol
        if len(codes) and codes.min() >= 0 and codes.max() < 2**16:
            codes = codes.astype(np.uint16)  # numpy's stable sort is a radix sort for 16-bit keys
        order: np.ndarray = np.argsort(codes, kind="stable")
        return order

    def pnl(self) -> np.ndarray:
        """Net profit per trade after both fees (same arithmetic as ExecutedTrade.pnl)."""
        pnl: np.ndarray = self.direction * self.units * (self.exit_fill - self.entry_fill)
        pnl -= self.entry_fee
        pnl -= self.exit_fee
        return pnl


@dataclass(frozen=True, slots=True)
class ReplayResults:
    """PortfolioResults with the trades as columns: what the engine's hot path works on."""

    trades: TradeColumns
    cash_after_event: np.ndarray
    rejected: int
    fees_paid: float
    final_cash: float

    @classmethod
    def from_results(cls, results: PortfolioResults) -> ReplayResults:
        """Convert the PortfolioManager's results."""
        return cls(
            TradeColumns.from_trades(results.trades),
            results.cash_after_event,
            results.rejected,
            results.fees_paid,
            results.final_cash,
        )


class PortfolioManager:
    """Shared cash and one position per symbol, updated event by event."""

    def __init__(
        self,
        cash: float,
        n_symbols: int,
        fees: FeeModel,
        size: float = 1.0,
        slippage_bps: float = 0.0,
        tick_size: float | None = None,
        step_size: float | None = None,
        marks: np.ndarray | None = None,
    ) -> None:
        """`marks`: closes on the union time grid, shape (bars, symbols), 0 before a symbol trades."""
        self.cash = float(cash)
        self.fees = fees
        self.size = size
        self.slip = slippage_bps / 10_000.0
        self.tick = tick_size
        self.step = step_size
        self.marks = marks
        self.open_seq = [-1] * n_symbols
        self._pos: list[tuple[int, float, float, float, int] | None] = [None] * n_symbols
        self._coef = np.zeros(n_symbols)
        self._const = 0.0
        self._n_open = 0
        self.trades: list[ExecutedTrade] = []
        self.rejected = 0
        self.fees_paid = 0.0
        self._cash_log: list[float] = []

    def _fill(self, raw: float, kind: int, buying: bool) -> float:
        price = raw
        if kind != LIMIT and kind != MARK and self.slip:
            price = raw * (1.0 + self.slip) if buying else raw * (1.0 - self.slip)
        if self.tick is not None:
            price = round(price / self.tick) * self.tick
        return price

    def equity_at(self, mark_bar: int) -> float:
        """Return cash + open positions marked at the closes of union bar `mark_bar`."""
        if self._n_open == 0:
            return self.cash
        if self.marks is None:
            raise ValueError("marks are required to value positions of several symbols")
        return self.cash + self._const + float(self._coef @ self.marks[mark_bar])

    def enter(
        self, symbol: int, seq: int, direction: int, raw: float, kind: int, mark_bar: int, event: int
    ) -> bool:
        """Open a position if the symbol is flat and the cash suffices; return whether it executed."""
        if self.open_seq[symbol] >= 0:
            self.rejected += 1
            return False
        fill = self._fill(raw, kind, direction > 0)
        rate = self.fees.maker if kind == LIMIT else self.fees.taker
        equity = self.cash if self._n_open == 0 else self.equity_at(mark_bar)
        units = self.size * equity / (fill * (1.0 + rate))
        if self.step is not None:
            units = math.floor(units / self.step + 1e-9) * self.step
        cost = units * fill
        fee = cost * rate
        if not units > 0 or cost + fee > self.cash + _CASH_TOLERANCE * abs(equity):
            self.rejected += 1
            return False
        self.cash -= cost + fee
        self.fees_paid += fee
        self.open_seq[symbol] = seq
        self._pos[symbol] = (direction, units, fill, fee, event)
        self._n_open += 1
        if direction > 0:
            self._coef[symbol] = units
        else:
            self._coef[symbol] = -units
            self._const += 2.0 * units * fill
        return True

    def exit(self, symbol: int, seq: int, raw: float, kind: int, event: int) -> bool:
        """Close the symbol's position if it belongs to proposal `seq`; return whether it executed."""
        if self.open_seq[symbol] != seq:
            return False
        pos = self._pos[symbol]
        assert pos is not None  # invariant: open_seq >= 0 implies a position
        direction, units, entry, entry_fee, entry_event = pos
        fill = self._fill(raw, kind, direction < 0)
        rate = 0.0 if kind == MARK else (self.fees.maker if kind == LIMIT else self.fees.taker)
        fee = units * fill * rate
        if direction > 0:
            self.cash += units * fill - fee
        else:
            self.cash += units * (2.0 * entry - fill) - fee
            self._const -= 2.0 * units * entry
        self.fees_paid += fee
        self.open_seq[symbol] = -1
        self._pos[symbol] = None
        self._coef[symbol] = 0.0
        self._n_open -= 1
        if self._n_open == 0:
            self._const = 0.0
        self.trades.append(
            ExecutedTrade(symbol, seq, direction, units, entry, fill, entry_fee, fee, entry_event, event)
        )
        return True

    def try_execute(self, event: TradeEvent, symbol: int, mark_bar: int = 0, direction: int = 1) -> bool:
        """Execute one TradeEvent (symbol: its index); return whether it changed the portfolio."""
        index = len(self._cash_log)
        if event.kind == "entry":
            done = self.enter(symbol, event.seq, direction, event.price, event.price_kind, mark_bar, index)
        else:
            done = self.exit(symbol, event.seq, event.price, event.price_kind, index)
        self._cash_log.append(self.cash)
        return done

    def replay(self, timeline: Timeline) -> None:
        """Execute every event of the timeline in order."""
        log = self._cash_log
        enter, exit_ = self.enter, self.exit
        rows = zip(
            timeline.symbol.tolist(),
            timeline.seq.tolist(),
            timeline.is_entry.tolist(),
            timeline.direction.tolist(),
            timeline.price.tolist(),
            timeline.price_kind.tolist(),
            timeline.mark_bar.tolist(),
            strict=True,
        )
        for i, (sym, seq, is_entry, direction, price, kind, mark_bar) in enumerate(rows):
            if is_entry:
                enter(sym, seq, direction, price, kind, mark_bar, i)
            else:
                exit_(sym, seq, price, kind, i)
            log.append(self.cash)

    def on_bar(self, mark_bar: int) -> float:
        """Return the equity at the close of union bar `mark_bar` given the current positions."""
        return self.equity_at(mark_bar)

    def get_results(self) -> PortfolioResults:
        """Return the closed trades, the cash after each event, rejections and fees."""
        return PortfolioResults(
            trades=list(self.trades),
            cash_after_event=np.array(self._cash_log, np.float64),
            rejected=self.rejected,
            fees_paid=self.fees_paid,
            final_cash=self.cash,
        )


def replay_timeline(
    timeline: Timeline,
    cash: float,
    n_symbols: int,
    fees: FeeModel,
    size: float = 1.0,
    slippage_bps: float = 0.0,
    tick_size: float | None = None,
    step_size: float | None = None,
    marks: np.ndarray | None = None,
) -> ReplayResults:
    """Replay the timeline like `PortfolioManager(...).replay(timeline)`, in one tight loop.

    Same arguments and the same arithmetic, operation for operation, so the results are identical
    (a property test checks it). The loop only decides which entries execute and their units (it
    needs the running cash for that); fills and fee rates are computed before it, and the fees,
    the cash after every event and the trade columns after it, with the same float operations in
    the same order (a running sum is a left fold: `np.add.accumulate`).
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
            marks,
            float(cash),
            size,
            step_size,
            n_symbols,
        )
    )
    exits_of = done.exit_of
    entry = np.flatnonzero(exits_of >= 0)
    entry = entry[np.argsort(exits_of[entry], kind="stable")]  # trades in closing order
    trades = _trade_columns(timeline, entry, exits_of[entry], fills, rates, done.units_at)
    cash_after_event, fees_paid = _cash_and_fees(len(timeline), float(cash), trades, rates)
    return ReplayResults(trades, cash_after_event, done.rejected, fees_paid, done.cash)


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
    rounding to the tick (PortfolioManager._fill for all events at once, same operations)."""
    fill = timeline.price
    if slip:
        kind = timeline.price_kind
        buying = np.where(timeline.is_entry, timeline.direction > 0, timeline.direction < 0)
        moved = np.where(buying, fill * (1.0 + slip), fill * (1.0 - slip))
        fill = np.where((kind != LIMIT) & (kind != MARK), moved, fill)
    if tick is not None:
        fill = np.round(fill / tick) * tick  # round half to even, as Python's round()
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
