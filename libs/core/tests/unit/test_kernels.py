"""The C kernels (backtest_core._kernels) give the bits of their numpy twins, and are used here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_core import _kernels, metrics
from backtest_core import equity as equity_module
from backtest_core.candles import Candles
from backtest_core.config import FeeModel
from backtest_core.equity import EquityCurve, build_equity, build_equity_python, closes_on_grid
from backtest_core.loader import load_strategy
from backtest_core.metrics import (
    max_drawdown,
    max_drawdown_python,
    pnl_folds,
    pnl_folds_python,
    return_moments,
    return_moments_python,
    sequential_sum,
    sequential_sum_python,
    sharpe_ratio,
    sortino_ratio,
)
from backtest_core.orchestrator import Timeline, generate_proposals, merge_timeline
from backtest_core.portfolio import ReplayResults, TradeColumns, replay_timeline
from backtest_core.proposals import ProposalSettings
from backtest_core.strategies import indicators
from backtest_core.strategies.indicators import ema_weights, window_sums, window_sums_python
from backtest_core.strategies.sma_cross import sma_cross_sides_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Values that make ties, signed zeros, NaN and infinities likely next to ordinary prices.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324]
values = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))
prices = st.one_of(st.sampled_from([100.0, 100.5, 101.0, 0.0, -0.0]), st.floats(1e-3, 1e6))


def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values and, outside NaN, equal bits (-0.0 is not 0.0)."""
    np.testing.assert_array_equal(got, want)
    both = ~(np.isnan(got) & np.isnan(want))
    np.testing.assert_array_equal(got.view(np.int64)[both], want.view(np.int64)[both])


def test_the_c_kernels_are_built_and_used_in_this_environment() -> None:
    # CI installs libs/core with pip, which compiles backtest_core._kernels: prove every caller found it.
    assert _kernels.__file__.endswith(".so")
    assert indicators.KERNELS is _kernels
    assert metrics.KERNELS is _kernels
    assert equity_module.KERNELS is _kernels


@settings(max_examples=400, deadline=None)
@given(
    x=st.lists(values, min_size=0, max_size=150),
    n=st.integers(1, 160),
    weighted=st.booleans(),
    step=st.sampled_from([1, 1, 2, -1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_window_sums_in_c_equal_numpy_bit_for_bit(
    x: list[float], n: int, weighted: bool, step: int, seed: int
) -> None:
    base = np.repeat(np.array(x, np.float64), abs(step))
    a = base[:: abs(step)] if step > 0 else base[::-1]  # contiguous, strided or reversed
    w = np.random.default_rng(seed).normal(size=n + 3)[:n] if weighted else None
    got = window_sums(a, n, w)
    assert got.shape == a.shape
    with np.errstate(all="ignore"):  # infinities overflow in numpy too (C raises no warnings)
        _same_bits(got, window_sums_python(a, n, w))


@pytest.mark.parametrize("n", [1, 2, 7, 10, 30, 31, 32, 33, 65, 200])
def test_window_sums_of_a_long_walk_equal_numpy_plain_and_ema_weighted(n: int) -> None:
    rng = np.random.default_rng(n)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, 20_011)))
    close[::97] = close[::89][: len(close[::97])]  # repeated values: ties between windows
    _same_bits(window_sums(close, n), window_sums_python(close, n))
    weights = ema_weights(12, n)
    got = window_sums(close, n, weights)
    _same_bits(got, window_sums_python(close, n, weights))
    # Each weighted term is a product rounded, then an add: a fused multiply-add would differ here.
    t = len(close) - 1
    manual = weights[0] * close[t - n + 1]
    for k in range(1, n):
        manual = manual + weights[k] * close[t - n + 1 + k]
    assert got[-1] == manual


def test_window_sums_keep_numpy_for_other_dtypes_and_check_the_window() -> None:
    x = np.arange(10, dtype=np.float32)
    got = window_sums(x, 3)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got[2:], [3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0])
    assert np.isnan(got[:2]).all()
    assert np.isnan(window_sums(np.ones(4), 5)).all()
    np.testing.assert_array_equal(window_sums(np.ones(3), 2, np.array([2.0, 3.0])), [np.nan, 5.0, 5.0])
    with pytest.raises(ValueError, match="window length must be >= 1, was 0"):
        _kernels.window_sums(np.ones(3), 0, None, np.empty(3))
    with pytest.raises(ValueError, match="out: expected a contiguous float64 vector of 3 items"):
        _kernels.window_sums(np.ones(3), 2, None, np.empty(4))


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(0, 6_000),
    fast=st.integers(1, 40),
    slow=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    specials=st.lists(st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0]), max_size=4),
)
def test_sma_cross_sides_in_c_equal_numpy(
    length: int, fast: int, slow: int, seed: int, specials: list[float]
) -> None:
    rng = np.random.default_rng(seed)
    close = rng.choice([1.0, 2.0, 3.0, 2.5, 0.1, 0.2, 0.3], length)  # few values: ties across chunks
    if length:
        close[rng.integers(0, length, len(specials))] = specials
    side = np.full(length, 7, np.int8)
    _kernels.sma_cross_sides(close, fast, slow, side)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(side, sma_cross_sides_python(close, fast, slow))


def test_sma_cross_signals_are_the_same_with_and_without_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 1)  # rounded: many SMA ties
    times = np.arange(n, dtype=np.int64) * 60_000_000_000
    candles = Candles("AAAUSDT", "1m", times, close, close, close, close, np.ones(n))
    strategy = load_strategy("sma_cross", {"fast": 3, "slow": 8})
    native_signals = strategy.decide_vectorized(candles, "1m", fast=3, slow=8)
    monkeypatch.setattr(indicators, "KERNELS", None)  # window_sums and sma_cross both fall back to numpy
    python_signals = strategy.decide_vectorized(candles, "1m", fast=3, slow=8)
    assert native_signals is not None and python_signals is not None
    native, python = native_signals.side, python_signals.side
    np.testing.assert_array_equal(native, python)
    assert int(np.count_nonzero(native == 1)) > 100
    assert int(np.count_nonzero(native)) == int(np.count_nonzero(python))


def _same_drawdown(got: tuple[float, int], want: tuple[float, int]) -> None:
    assert (repr(got[0]), got[1]) == (repr(want[0]), want[1])


@settings(max_examples=400, deadline=None)
@given(x=st.lists(st.one_of(values, prices), min_size=0, max_size=120))
def test_max_drawdown_in_c_equals_numpy(x: list[float]) -> None:
    equity = np.array(x, np.float64)
    with np.errstate(all="ignore"):
        _same_drawdown(max_drawdown(equity), max_drawdown_python(equity))
        _same_drawdown(max_drawdown(equity[::2]), max_drawdown_python(equity[::2].copy()))


def test_max_drawdown_of_a_long_walk_equals_numpy_and_hand_figures() -> None:
    rng = np.random.default_rng(11)
    walk = 1_000.0 + np.cumsum(rng.normal(0.0, 1.0, 200_000))
    _same_drawdown(max_drawdown(walk), max_drawdown_python(walk))
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 90.0, 130.0, 65.0])) == (50.0, 2)
    worst, bars = max_drawdown(np.array([math.inf, 2.0]))  # the bar at the +inf peak: 1 - inf/inf = NaN
    assert math.isnan(worst) and bars == 1
    assert max_drawdown([1.0, 0.5]) == (50.0, 1)  # type: ignore[arg-type]  # a list: the numpy twin


def _same_floats(got: tuple[float, ...], want: tuple[float, ...]) -> None:
    assert [repr(v) for v in got] == [repr(v) for v in want]  # NaN equals NaN, -0.0 is not 0.0


@settings(max_examples=300, deadline=None)
@given(
    x=st.lists(st.one_of(values, st.floats(-0.01, 0.01)), min_size=2, max_size=700),
    scale=st.sampled_from([1.0, 1e-3, 1e6]),
)
def test_mean_and_deviations_in_c_equal_numpys_pairwise_sums(x: list[float], scale: float) -> None:
    with np.errstate(all="ignore"):  # 1e308 * 1e6 overflows to inf: a value the kernels must handle too
        r = np.array(x) * scale
        _same_floats(return_moments(r), return_moments_python(r))


@pytest.mark.parametrize("n", [2, 7, 8, 9, 127, 128, 129, 136, 8_191, 8_193, 65_537, 1_000_000])
def test_mean_and_deviations_of_long_returns_equal_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    r = rng.normal(0.0, 1e-3, n)
    r[::13] = 0.0
    _same_floats(return_moments(r), return_moments_python(r))
    assert return_moments(r)[0] == float(np.mean(r))
    assert return_moments(r)[1] == float(np.std(r, ddof=1))


def test_sharpe_and_sortino_are_the_same_with_and_without_the_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = np.random.default_rng(2).normal(0.0002, 0.01, 50_001)
    native = (sharpe_ratio(r, 525_600.0), sortino_ratio(r, 525_600.0))
    monkeypatch.setattr(metrics, "KERNELS", None)
    assert (sharpe_ratio(r, 525_600.0), sortino_ratio(r, 525_600.0)) == native
    assert native[0] is not None and 10.0 < native[0] < 25.0  # 0.02 / 1 * sqrt(525,600) = 14.5 expected
    assert sharpe_ratio(np.ones(5), 365.0) is None  # no variance
    assert sortino_ratio(np.full(5, 0.01), 365.0) is None  # no downside


@settings(max_examples=300, deadline=None)
@given(x=st.lists(st.one_of(values, st.floats(-1e4, 1e4)), max_size=300))
def test_trade_pnl_sums_in_c_equal_numpys_left_folds(x: list[float]) -> None:
    a = np.array(x, np.float64)
    with np.errstate(all="ignore"):  # sums of +-1e308 overflow in numpy too
        got, want = pnl_folds(a), pnl_folds_python(a)
        backwards = (sequential_sum_python(a), sequential_sum_python(a[::-1]))
    _same_floats((got.total, got.wins, got.losses), (want.total, want.wins, want.losses))
    assert (got.count, got.win_count, got.loss_count) == (want.count, want.win_count, want.loss_count)
    _same_floats((sequential_sum(a), sequential_sum(a[::-1])), backwards)
    assert pnl_folds(x) == pnl_folds(a) or math.isnan(got.total)  # a list goes the same way


def test_trade_pnl_sums_of_hand_values() -> None:
    f = pnl_folds([0.1, 0.2, -0.3, 0.0, -0.0, 0.3])
    assert (f.total, f.wins, f.losses) == (((((0.0 + 0.1) + 0.2) - 0.3) + 0.0) + 0.3, (0.1 + 0.2) + 0.3, -0.3)
    assert (f.count, f.win_count, f.loss_count) == (6, 3, 1)
    assert repr(sequential_sum(np.array([-0.0, -0.0]))) == "0.0"  # 0.0 + -0.0 is +0.0, as in numpy


def _same_curve(got: EquityCurve, want: EquityCurve) -> None:
    _same_bits(got.equity, want.equity)
    _same_bits(got.cash, want.cash)
    assert got.held_any.dtype == want.held_any.dtype == np.bool_
    np.testing.assert_array_equal(got.held_any, want.held_any)
    assert list(got.held_bars.items()) == list(want.held_bars.items())


def _market(seed: int, n: int, offsets: list[int], count: int) -> dict[str, Candles]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
        times = (offsets[i] + np.arange(n, dtype=np.int64)) * 86_400_000_000_000
        symbol = f"S{i}USDT"
        out[symbol] = Candles(symbol, "1d", times, open_, open_ * 1.01, open_ * 0.99, close, np.ones(n))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    strategy=st.sampled_from(["sma_cross", "momentum", "peak_ema_reversal", "rsi_reversion"]),
    allow_short=st.booleans(),
    count=st.integers(1, 4),
    offsets=st.lists(st.integers(0, 30), min_size=4, max_size=4),
)
def test_equity_curve_in_c_equals_numpy_on_engine_runs(
    seed: int, strategy: str, allow_short: bool, count: int, offsets: list[int]
) -> None:
    data = _market(seed, 300, offsets, count)
    symbols = list(data)
    tables = generate_proposals(
        load_strategy(strategy, {}),
        data,
        "1d",
        ProposalSettings("next_open", allow_short, "stop_first", None),
    )
    union = np.unique(np.concatenate([c.open_time for c in data.values()]))
    timeline = merge_timeline(tables, data, symbols, union)
    ordered = [data[s] for s in symbols]
    marks = np.column_stack([closes_on_grid(c, union) for c in ordered]) if count > 1 else None
    results = replay_timeline(timeline, 10_000.0, count, FeeModel(), size=0.4, marks=marks)
    got = build_equity(union, ordered, timeline, results, 10_000.0)
    _same_curve(got, build_equity_python(union, ordered, timeline, results, 10_000.0))
    assert len(got.held_bars) == len(np.unique(results.trades.symbol))


def _synthetic(data: st.DataObject) -> tuple[np.ndarray, list[Candles], Timeline, ReplayResults, float]:
    """Draw a timeline and closed trades by hand: signed zeros, shorts and longs, bars shared by events."""
    n = data.draw(st.integers(1, 40), "bars")
    count = data.draw(st.integers(1, 3), "symbols")
    events = data.draw(st.integers(0, 30), "events")
    event_bar = np.sort(
        np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=events, max_size=events)))
    )
    rows: list[tuple[int, int, int, float, float, int, int]] = []
    for symbol in range(count):
        picks = sorted(data.draw(st.lists(st.integers(0, max(events - 1, 0)), max_size=8 if events else 0)))
        for a, b in zip(picks[0::2], picks[1::2], strict=False):
            direction = data.draw(st.sampled_from([1, -1]))
            units = data.draw(st.sampled_from([0.0, -0.0, 1.5, 3.0, 1e-300]))
            fill = data.draw(prices)
            rows.append((b, symbol, direction, units, fill, a, b))
    rows.sort(key=lambda r: r[0])  # closing order
    col = [
        [float(r[i]) for r in rows] for i in range(7)
    ]  # close event, symbol, dir, units, fill, entry, exit
    zeros = [0.0] * len(rows)
    trades = TradeColumns.from_lists(
        [col[1], zeros, col[2], col[3], col[4], col[4], zeros, zeros, col[5], col[6]]
    )
    log = np.array(
        data.draw(
            st.lists(st.sampled_from([-0.0, 0.0, 5.0, -2.5, math.nan]), min_size=events, max_size=events)
        )
    )
    start_cash = data.draw(st.sampled_from([-0.0, 0.0, 1_000.0]))
    z = np.zeros(events, np.int64)
    timeline = Timeline(z, z, z.astype(bool), z, z.astype(float), z, event_bar.astype(np.int64), z, z, z, z)
    union = np.arange(n, dtype=np.int64)
    candles = []
    for i in range(count):
        close = np.array(
            data.draw(st.lists(st.one_of(prices, st.sampled_from([-0.0, math.nan])), min_size=n, max_size=n))
        )
        candles.append(Candles(f"S{i}USDT", "1m", union, close, close, close, close, np.ones(n)))
    return union, candles, timeline, ReplayResults(trades, log, 0, 0.0, 0.0), start_cash


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_equity_curve_in_c_equals_numpy_on_hand_drawn_trades_with_signed_zeros(data: st.DataObject) -> None:
    union, candles, timeline, results, start_cash = _synthetic(data)
    got = build_equity(union, candles, timeline, results, start_cash)
    _same_curve(got, build_equity_python(union, candles, timeline, results, start_cash))


def test_minus_zero_cash_becomes_plus_zero_outside_positions_as_in_numpy() -> None:
    # Cash -0.0; one long of 0 units on bars 1..2: numpy adds +0.0 everywhere, so no -0.0 remains.
    union = np.arange(4, dtype=np.int64)
    z = np.zeros(2, np.int64)
    timeline = Timeline(z, z, z.astype(bool), z, z.astype(float), z, np.array([1, 3]), z, z, z, z)
    trades = TradeColumns.from_lists([[0], [0], [1], [0.0], [10.0], [10.0], [0.0], [0.0], [0], [1]])
    results = ReplayResults(trades, np.array([-0.0, -0.0]), 0, 0.0, 0.0)
    close = np.array([1.0, 2.0, 3.0, 4.0])
    candles = [Candles("AUSDT", "1m", union, close, close, close, close, np.ones(4))]
    curve = build_equity(union, candles, timeline, results, -0.0)
    assert curve.cash.view(np.int64).tolist() == np.array([-0.0] * 4).view(np.int64).tolist()
    assert curve.equity.view(np.int64).tolist() == [0, 0, 0, 0]  # all +0.0
    assert curve.held_any.tolist() == [False, True, True, False]
    assert curve.held_bars == {0: 2}


def test_overlapping_positions_raise_the_numpy_error_through_the_c_path() -> None:
    union = np.arange(5, dtype=np.int64)
    z = np.zeros(4, np.int64)
    timeline = Timeline(z, z, z.astype(bool), z, z.astype(float), z, np.array([0, 1, 2, 3]), z, z, z, z)
    # Two positions of one symbol, [0, 3) and [1, 2): they overlap, which the replay never produces.
    cols: list[list[float]] = [[0, 0], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1], [0, 0], [0, 0], [0, 1], [3, 2]]
    results = ReplayResults(TradeColumns.from_lists(cols), np.zeros(4), 0, 0.0, 0.0)
    close = np.ones(5)
    candles = [Candles("AUSDT", "1m", union, close, close, close, close, np.ones(5))]
    with pytest.raises(ValueError, match="negative"):
        build_equity_python(union, candles, timeline, results, 1.0)
    with pytest.raises(ValueError, match="negative"):
        build_equity(union, candles, timeline, results, 1.0)
