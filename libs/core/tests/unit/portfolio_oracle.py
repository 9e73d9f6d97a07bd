"""The readable, event-by-event portfolio: the oracle the property tests compare the engine's replay with.

`PortfolioManager` keeps shared cash and one position per symbol and executes one event at a time, with
the accounting `backtest_core.engine.portfolio` states (fills with slippage and tick rounding, maker/taker
fees, sizing from marked equity, shorts holding their notional as collateral). It is test code: the engine
replays with `portfolio.replay_timeline` (numpy around the C loop of `replay_loop`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from backtest_core.engine.orchestrator import Timeline
from backtest_core.engine.portfolio import ReplayResults, TradeColumns
from backtest_core.engine.proposals import LIMIT, MARK, ProposalTable
from backtest_core.engine.replay_loop import CASH_TOLERANCE
from backtest_core.model.config import FeeModel


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
        closes: Sequence[np.ndarray] = (),
    ) -> None:
        """`closes[k]`: symbol k's close on the union time grid, 0 before it trades."""
        self.cash = float(cash)
        self.fees = fees
        self.size = size
        self.slip = slippage_bps / 10_000.0
        self.tick = tick_size
        self.step = step_size
        self.closes = closes
        self.open_seq = [-1] * n_symbols
        self._pos: list[tuple[int, float, float, float, int] | None] = [None] * n_symbols
        self.trades: list[ExecutedTrade] = []
        self.rejected = 0
        self.fees_paid = 0.0
        self.cash_log: list[float] = []

    def _fill(self, raw: float, kind: int, buying: bool) -> float:
        price = raw
        if kind != LIMIT and kind != MARK and self.slip:
            price = raw * (1.0 + self.slip) if buying else raw * (1.0 - self.slip)
        if self.tick is not None:
            price = round(price / self.tick) * self.tick
        return price

    def equity_at(self, bar: int) -> float:
        """Return cash + open positions marked at the closes of union bar `bar` (in symbol order)."""
        collateral, marked = 0.0, 0.0
        for symbol, pos in enumerate(self._pos):
            if pos is not None:
                direction, units, entry, _, _ = pos
                if direction < 0:
                    collateral += 2.0 * units * entry
                marked += direction * units * float(self.closes[symbol][bar])
        return self.cash + collateral + marked

    def enter(
        self, symbol: int, seq: int, direction: int, raw: float, kind: int, mark_bar: int, event: int
    ) -> None:
        """Open a position if the symbol is flat and the cash suffices (else count a rejection)."""
        if self.open_seq[symbol] >= 0:
            self.rejected += 1
            return
        fill = self._fill(raw, kind, direction > 0)
        rate = self.fees.maker if kind == LIMIT else self.fees.taker
        equity = self.equity_at(mark_bar) if any(p is not None for p in self._pos) else self.cash
        units = self.size * equity / (fill * (1.0 + rate))
        if self.step is not None:
            units = math.floor(units / self.step + 1e-9) * self.step
        cost = units * fill
        fee = cost * rate
        if not units > 0 or cost + fee > self.cash + CASH_TOLERANCE * abs(equity):
            self.rejected += 1
            return
        self.cash -= cost + fee
        self.fees_paid += fee
        self.open_seq[symbol] = seq
        self._pos[symbol] = (direction, units, fill, fee, event)

    def exit(self, symbol: int, seq: int, raw: float, kind: int, event: int) -> None:
        """Close the symbol's position if it belongs to proposal `seq`."""
        pos = self._pos[symbol]
        if self.open_seq[symbol] != seq or pos is None:
            return
        direction, units, entry, entry_fee, entry_event = pos
        fill = self._fill(raw, kind, direction < 0)
        rate = 0.0 if kind == MARK else (self.fees.maker if kind == LIMIT else self.fees.taker)
        fee = units * fill * rate
        if direction > 0:
            self.cash += units * fill - fee
        else:
            self.cash += units * (2.0 * entry - fill) - fee
        self.fees_paid += fee
        self.open_seq[symbol] = -1
        self._pos[symbol] = None
        self.trades.append(
            ExecutedTrade(symbol, seq, direction, units, entry, fill, entry_fee, fee, entry_event, event)
        )

    def execute(self, timeline: Timeline, k: int) -> None:
        """Execute event k of the timeline and log the cash after it."""
        symbol, seq = int(timeline.symbol[k]), int(timeline.seq[k])
        price, kind = float(timeline.price[k]), int(timeline.price_kind[k])
        if timeline.is_entry[k]:
            self.enter(symbol, seq, int(timeline.direction[k]), price, kind, int(timeline.mark_bar[k]), k)
        else:
            self.exit(symbol, seq, price, kind, k)
        self.cash_log.append(self.cash)

    def replay(self, timeline: Timeline) -> None:
        """Execute every event of the timeline in order."""
        for k in range(len(timeline)):
            self.execute(timeline, k)

    def results(self) -> ReplayResults:
        """Return what the engine's replay returns: trades as columns, cash after each event, counts."""
        names = TradeColumns.__dataclass_fields__
        rows = [[getattr(t, name) for t in self.trades] for name in names]
        return ReplayResults(
            trade_columns(rows), np.array(self.cash_log, np.float64), self.rejected, self.fees_paid, self.cash
        )


def trade_columns(rows: Sequence[Sequence[float]]) -> TradeColumns:
    """Build trade columns from per-field lists in field order (symbol, seq, ..., exit_event)."""
    ints, floats = np.int64, np.float64
    kinds = (ints, ints, ints, floats, floats, floats, floats, floats, ints, ints)
    return TradeColumns(*(np.array(col, kind) for col, kind in zip(rows, kinds, strict=True)))


def proposal_rows(table: ProposalTable) -> list[tuple[float, ...]]:
    """Return the proposals as rows of their columns' values (NaN as None), to compare two tables."""
    names = [f for f in ProposalTable.__dataclass_fields__ if f != "symbol"]
    columns = [getattr(table, name).tolist() for name in names]
    return [tuple(None if v != v else v for v in row) for row in zip(*columns, strict=True)]
