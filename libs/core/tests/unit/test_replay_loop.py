"""The C replay loop gives bit-identical results to the Python loop, and it is the one that runs here."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core import replay_loop
from backtest_core.replay_loop import (
    LoopResult,
    ReplayInputs,
    marks_matrix,
    replay_events,
    replay_events_native,
    replay_events_python,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def _timeline(seed: int, events: int, symbols: int, shorts: bool, bars: int) -> dict[str, np.ndarray]:
    """Random events: entries and exits of proposals per symbol (some never open: rejected or stray)."""
    rng = np.random.default_rng(seed)
    symbol = rng.integers(0, symbols, events)
    seq = np.zeros(events, np.int64)
    is_entry = np.zeros(events, bool)
    direction = np.ones(events, np.int64)
    pending: dict[int, list[tuple[int, int]]] = {s: [] for s in range(symbols)}
    counter = [0] * symbols
    for i, s in enumerate(symbol.tolist()):
        if pending[s] and rng.random() < 0.55:  # exit one of the symbol's proposals (maybe not the open one)
            seq[i], direction[i] = pending[s].pop(int(rng.integers(0, len(pending[s]))))
        else:
            seq[i], is_entry[i] = counter[s], True
            direction[i] = -1 if shorts and rng.random() < 0.5 else 1
            pending[s].append((counter[s], int(direction[i])))
            counter[s] += 1
    mark_bar = np.sort(rng.integers(0, bars, events))
    return {
        "symbol": symbol.astype(np.int64),
        "seq": seq,
        "is_entry": is_entry,
        "direction": direction,
        "fills": 100.0 * np.exp(rng.normal(0.0, 0.05, events)),
        "mark_bar": mark_bar,
    }


def _same(a: LoopResult, b: LoopResult) -> None:
    assert (a.rejected, a.cash) == (b.rejected, b.cash)
    assert np.array_equal(a.units_at, b.units_at)  # exact: same doubles, not close ones
    assert np.array_equal(a.exit_of, b.exit_of)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    events=st.integers(0, 400),
    symbols=st.integers(1, 40),
    shorts=st.booleans(),
    fee=st.sampled_from([0.0, 0.0004, 0.001]),
    size=st.sampled_from([1.0, 0.5, 0.3, 0.05, 0.01, 2.0]),
    step=st.sampled_from([None, 0.001, 0.1]),
    cash=st.sampled_from([1_000.0, 1_000_000.0, 12_345.678]),
)
def test_c_loop_equals_python_loop_bit_for_bit_on_random_timelines(
    seed: int,
    events: int,
    symbols: int,
    shorts: bool,
    fee: float,
    size: float,
    step: float | None,
    cash: float,
) -> None:
    t = _timeline(seed, events, symbols, shorts, bars=50)
    rng = np.random.default_rng(seed + 1)
    rates = np.where(rng.random(events) < 0.3, fee / 2.0, fee)
    marks = 100.0 * np.exp(rng.normal(0.0, 0.05, (50, symbols))) if symbols > 1 else None
    call = (
        t["symbol"],
        t["seq"],
        t["is_entry"],
        t["direction"],
        t["fills"],
        rates,
        t["mark_bar"],
        marks,
        cash,
        size,
        step,
        symbols,
    )
    python = replay_events_python(ReplayInputs(*call))
    native = replay_events_native(ReplayInputs(*call))
    assert native is not None
    _same(native, python)


def test_shared_cash_c_loop_marks_open_positions_and_rejects_what_the_cash_cannot_pay() -> None:
    t = _timeline(3, 2_000, 30, True, bars=200)
    rng = np.random.default_rng(4)
    rates = np.full(2_000, 0.0004)
    marks = 100.0 * np.exp(rng.normal(0.0, 0.05, (200, 30)))
    call = (*list(t.values())[:5], rates, t["mark_bar"], marks, 10_000.0, 0.3, None, 30)
    python, native = replay_events_python(ReplayInputs(*call)), replay_events_native(ReplayInputs(*call))
    assert native is not None
    _same(native, python)
    assert python.rejected > 100  # 30% of equity per position: most overlapping entries cannot be paid
    assert int((python.exit_of >= 0).sum()) == 38  # closed trades (exits of other proposals are ignored)


def test_c_loop_hands_over_to_python_where_python_raises() -> None:
    t = _timeline(5, 20, 1, False, bars=5)
    t["fills"][:] = 0.0  # units = size * equity / 0.0: ZeroDivisionError in Python
    call = (*list(t.values())[:5], np.zeros(20), t["mark_bar"], None, 1_000.0, 1.0, None, 1)
    assert replay_events_native(ReplayInputs(*call)) is None
    with pytest.raises(ZeroDivisionError):
        replay_events(ReplayInputs(*call))


def test_two_symbols_without_marks_raise_the_same_error_on_both_paths() -> None:
    symbol, seq = np.array([0, 1], np.int64), np.array([0, 0], np.int64)
    call = (symbol, seq, np.array([True, True]), np.ones(2, np.int64), np.full(2, 10.0), np.zeros(2))
    rest = (np.zeros(2, np.int64), None, 1_000.0, 0.5, None, 2)
    assert replay_events_native(ReplayInputs(*call, *rest)) is None
    with pytest.raises(ValueError, match="marks are required"):
        replay_events(ReplayInputs(*call, *rest))


def test_the_c_loop_and_numpys_ddot_are_available_in_this_environment() -> None:
    # CI installs libs/core with pip, which compiles backtest_core._replay: prove it was built and found.
    assert replay_loop.NATIVE.reason == ""
    assert replay_loop.NATIVE.available
    assert replay_loop.NATIVE.ddot != 0


@settings(max_examples=40, deadline=None)
@given(bars=st.integers(1, 700), symbols=st.integers(1, 300), seed=st.integers(0, 1_000))
def test_marks_matrix_puts_each_symbols_closes_in_its_column(bars: int, symbols: int, seed: int) -> None:
    # Sizes straddle the C copy's 256 x 256 tiles; a strided column is copied too.
    rng = np.random.default_rng(seed)
    columns = [rng.normal(size=2 * bars)[::2] for _ in range(symbols)]
    marks = marks_matrix(columns)
    assert marks.shape == (bars, symbols) and marks.flags.c_contiguous
    np.testing.assert_array_equal(marks, np.column_stack(columns))


def test_marks_matrix_refuses_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="column 1: expected 3 float64 values"):
        marks_matrix([np.zeros(3), np.zeros(4)])
