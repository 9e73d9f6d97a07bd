"""Trade models are validated from the table's rows; times are UTC datetimes floored to microseconds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from backtest_core.engine.proposals import EXIT_REASONS
from backtest_core.model.results import Trade
from backtest_core.model.trade_rows import TradeTable, build_trades, utc_datetimes

MINUTE_NS = 60_000_000_000


def _table(seed: int, rows: int, symbols: int) -> TradeTable:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 10**18, max(rows, 1)))  # trades share times, as they share bars
    return TradeTable(
        symbols=tuple(f"S{i:03d}USDT" for i in range(symbols)),
        reasons=EXIT_REASONS,
        symbol=rng.integers(0, symbols, rows),
        long=rng.random(rows) < 0.5,
        reason=rng.integers(0, len(EXIT_REASONS), rows).astype(np.int8),
        entry_ns=times[rng.integers(0, len(times), rows)],
        exit_ns=times[rng.integers(0, len(times), rows)],
        units=rng.random(rows) * 10.0,
        entry_price=100.0 + rng.normal(size=rows),
        exit_price=100.0 + rng.normal(size=rows),
        pnl=rng.normal(size=rows),
        return_pct=rng.normal(size=rows),
        fees=rng.random(rows) * 1e-3,
        bars_held=rng.integers(0, 10_000, rows),
    )


def test_every_row_becomes_a_trade_with_that_rows_values() -> None:
    table = _table(3, 200, 7)
    trades = build_trades(table)
    assert len(trades) == 200
    for k, trade in enumerate(trades):
        assert type(trade) is Trade
        assert trade.model_fields_set == set(Trade.model_fields)
        assert trade.symbol == table.symbols[int(table.symbol[k])]
        assert trade.exit_reason == EXIT_REASONS[int(table.reason[k])]
        assert trade.entry_time == utc_datetimes(table.entry_ns[k : k + 1])[0]
        assert (trade.pnl, trade.fees, trade.bars_held) == (table.pnl[k], table.fees[k], table.bars_held[k])
    assert build_trades(table.take(slice(0, 0))) == []


def test_built_trade_is_a_valid_frozen_trade_with_the_columns_values() -> None:
    table = _table(1, 3, 2)
    trade = build_trades(table)[1]
    assert Trade.model_validate(trade.model_dump()) == trade
    assert trade.symbol == table.symbols[int(table.symbol[1])]
    assert trade.side == ("long" if table.long[1] else "short")
    assert trade.units == float(table.units[1])
    assert trade.exit_time == utc_datetimes(table.exit_ns[1:2])[0]
    assert trade.bars_held == int(table.bars_held[1])
    assert trade.model_copy(update={"units": 2.5}).units == 2.5
    assert trade.units == float(table.units[1])
    with pytest.raises(ValueError, match="frozen"):
        trade.units = 1.0  # type: ignore[misc]


def test_a_symbol_code_outside_the_lookup_is_an_index_error() -> None:
    table = _table(2, 4, 2)
    fields = {f: getattr(table, f) for f in table.__dataclass_fields__}
    bad = TradeTable(**{**fields, "symbol": np.full(4, 5)})
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        build_trades(bad)


def test_datetimes_are_utc_and_floor_nanoseconds_to_microseconds() -> None:
    ns = np.array([0, 1_999, -1, 1_577_836_800_000_000_123, 951_782_400 * 10**9 + MINUTE_NS], np.int64)
    assert utc_datetimes(ns) == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2000, 2, 29, 0, 1, tzinfo=UTC),
    ]
    assert all(d.tzinfo is UTC for d in utc_datetimes(ns))
