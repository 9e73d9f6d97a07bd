"""The C trade builder and datetime conversion give the same models and datetimes as the Python ones."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from backtest_core import trade_rows
from backtest_core.proposals import EXIT_REASONS
from backtest_core.results import Trade
from backtest_core.trade_rows import (
    TradeTable,
    build_trades,
    datetimes_python,
    trades_python,
    utc_datetimes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(0, 300), symbols=st.integers(1, 20))
def test_c_builder_makes_the_same_trades_as_the_python_loop(seed: int, rows: int, symbols: int) -> None:
    table = _table(seed, rows, symbols)
    native, python = build_trades(table), trades_python(table)
    assert len(native) == len(python) == rows
    for a, b in zip(native, python, strict=True):
        assert type(a) is Trade
        assert a.__dict__ == b.__dict__
        assert list(a.__dict__) == list(b.__dict__)  # same field order, so the same JSON
        assert a.model_fields_set == b.model_fields_set == set(Trade.model_fields)
        assert (a.__pydantic_extra__, a.__pydantic_private__) == (None, None)
        assert a.model_dump_json() == b.model_dump_json()
        assert a == b


def test_built_trade_is_a_valid_frozen_trade_with_the_columns_values() -> None:
    table = _table(1, 3, 2)
    trade = build_trades(table)[1]
    assert Trade.model_validate(trade.model_dump()) == trade
    assert trade.symbol == table.symbols[int(table.symbol[1])]
    assert trade.side == ("long" if table.long[1] else "short")
    assert trade.units == float(table.units[1])
    assert trade.exit_time == datetimes_python(table.exit_ns[1:2])[0]
    assert trade.bars_held == int(table.bars_held[1])
    assert trade.model_copy(update={"units": 2.5}).units == 2.5
    assert trade.units == float(table.units[1])
    with pytest.raises(ValueError, match="frozen"):
        trade.units = 1.0  # type: ignore[misc]


def test_c_builder_rejects_a_code_outside_its_lookup() -> None:
    table = _table(2, 4, 2)
    fields = {f: getattr(table, f) for f in table.__dataclass_fields__}
    bad = TradeTable(**{**fields, "symbol": np.full(4, 5)})
    with pytest.raises(IndexError, match="code 5 is out of range of 2 items"):
        build_trades(bad)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), max_size=50))
def test_c_datetimes_equal_pandas_to_pydatetime(ns: list[int]) -> None:
    values = np.array(ns, np.int64)
    assert utc_datetimes(values) == datetimes_python(values)
    assert all(d.tzinfo is UTC for d in utc_datetimes(values))


def test_c_datetimes_floor_nanoseconds_to_microseconds_like_pandas() -> None:
    ns = np.array([0, 1_999, -1, 1_577_836_800_000_000_123, 951_782_400 * 10**9 + MINUTE_NS], np.int64)
    assert utc_datetimes(ns) == [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2000, 2, 29, 0, 1, tzinfo=UTC),
    ]
    assert utc_datetimes(ns) == datetimes_python(ns)


def test_the_c_trade_builder_is_available_in_this_environment() -> None:
    # CI installs libs/core with pip, which compiles backtest_core._trades: prove it was built and found.
    assert trade_rows._NATIVE is not None
