"""The C kernels (backtest_core.native._kernels) compute the numbers their rules state, derived here by
hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_core.engine.equity import build_equity
from backtest_core.engine.orchestrator import Timeline
from backtest_core.engine.portfolio import ReplayResults
from backtest_core.metrics.performance import max_drawdown, return_moments
from backtest_core.model.candles import Candles
from backtest_core.native import _kernels
from backtest_core.strategy.indicators import ema_weights, window_sums
from backtest_core.strategy.loader import load_strategy

from .portfolio_oracle import trade_columns


def test_window_sums_add_each_window_oldest_first_and_are_nan_before_the_first_full_window() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(window_sums(x, 3), [np.nan, np.nan, 6.0, 9.0, 12.0])
    # weights[k] multiplies the k-th oldest value of the window: 2*3 + 3*4 = 18 at t = 3
    np.testing.assert_array_equal(window_sums(x, 2, np.array([2.0, 3.0])), [np.nan, 8.0, 13.0, 18.0, 23.0])
    assert np.isnan(window_sums(np.ones(4), 5)).all()
    np.testing.assert_array_equal(window_sums(np.arange(4, dtype=np.int64), 2), [np.nan, 1.0, 3.0, 5.0])


@pytest.mark.parametrize("n", [1, 2, 7, 31, 32, 33, 65])
def test_window_sums_of_a_long_walk_are_the_sequential_sums_of_each_window(n: int) -> None:
    # 40 bars past the SIMD blocks of 32 outputs; each window summed left to right, products rounded
    # before each add (no fused multiply-add), as the per-bar path's numpy cumsum of the last window.
    rng = np.random.default_rng(n)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, 3 * 32 + 40)))
    weights = ema_weights(12, n)
    plain, weighted = window_sums(close, n), window_sums(close, n, weights)
    for t in range(n - 1, len(close)):
        window = close[t - n + 1 : t + 1]
        assert plain[t] == float(np.cumsum(window)[-1])
        assert weighted[t] == float(np.cumsum(weights * window)[-1])


def test_window_sums_reject_a_window_below_one_and_too_few_weights() -> None:
    with pytest.raises(ValueError, match="window length must be >= 1, was 0"):
        window_sums(np.ones(3), 0)
    with pytest.raises(ValueError, match="weights: expected at least 3 values, got 2"):
        window_sums(np.ones(5), 3, np.ones(2))
    with pytest.raises(ValueError, match="out: expected a contiguous float64 vector of 3 items"):
        _kernels.window_sums(np.ones(3), 2, None, np.empty(4))


def test_sma_cross_signals_buy_on_the_strict_up_cross_and_sell_on_the_strict_down_cross() -> None:
    # SMA(1) = close, SMA(2) = mean of the last two closes:
    #   t:       0    1    2    3    4    5
    #   close:   3    1    2    4    3    1
    #   sma2:    -    2    1.5  3    3.5  2
    #   close vs sma2: -  <  >    >    <    <   -> up-cross at t=2 (BUY), down-cross at t=4 (SELL)
    close = np.array([3.0, 1.0, 2.0, 4.0, 3.0, 1.0])
    times = np.arange(6, dtype=np.int64) * 60_000_000_000
    candles = Candles("AAAUSDT", "1m", times, close, close, close, close, np.ones(6))
    strategy = load_strategy("sma_cross", {"fast": 1, "slow": 2})
    signals = strategy.decide_vectorized(candles, "1m", fast=1, slow=2)
    assert signals is not None
    assert signals.side.tolist() == [0, 0, 1, 0, -1, 0]


def test_sma_cross_signals_are_zero_on_ties_and_before_both_averages_exist() -> None:
    close = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    side = np.full(len(close), 7, np.int8)
    _kernels.sma_cross_sides(close, 2, 4, side)
    # sma2 - sma4 from t=3: 0.25, 0.5, 0.25 (>), 0 (tie), -0.25 (<): the tie breaks the cross
    assert side.tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    _kernels.sma_cross_sides(close, 1, 3, side)
    # close vs sma3 from t=2: 1 = 1, 2 > 4/3, 2 > 5/3, 2 = 2, 2 = 2, 1 < 5/3: no strict cross either
    assert side.tolist() == [0] * 8
    short = np.array([2.0, 2.0, 2.0, 1.0, 3.0])
    side = np.full(5, 7, np.int8)
    _kernels.sma_cross_sides(short, 1, 3, side)
    # close vs sma3: t=2 2 = 2, t=3 1 < 5/3, t=4 3 > 2: a strict up-cross at t=4
    assert side.tolist() == [0, 0, 0, 0, 1]


def test_max_drawdown_is_the_deepest_fall_and_the_longest_underwater_run() -> None:
    equity = np.array([100.0, 90.0, 95.0, 100.0, 120.0, 60.0, 70.0, 80.0, 90.0, 130.0, 120.0])
    assert max_drawdown(equity) == (50.0, 4)  # 120 -> 60; 60, 70, 80, 90 below the peak of 120
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == (0.0, 0)
    assert max_drawdown(np.array([3.0, 2.0, 1.0])) == (100.0 * (1.0 - 1.0 / 3.0), 2)
    assert max_drawdown(np.array([100.0, 120.0, 90.0, 90.0, 130.0, 65.0])) == (50.0, 2)
    assert max_drawdown(np.zeros(0)) == (0.0, 0)
    assert max_drawdown(np.array([1.0, 0.5])[::-1].copy()) == (0.0, 0)


def test_max_drawdown_of_a_curve_holding_nan_is_nan() -> None:
    worst, _ = max_drawdown(np.array([100.0, 90.0, math.nan, 80.0]))
    assert math.isnan(worst)


def test_return_moments_are_the_mean_deviations_skewness_and_kurtosis() -> None:
    # r = 0.1, -0.1, 0.2, 0.0: mean 0.05; d = 0.05, -0.15, 0.15, -0.05; d^2 sums to 0.05 (m2 = 0.0125),
    # sd = sqrt(0.05 / 3); d^3 sums to 0 (skew 0); d^4 sums to 2 * (6.25e-6 + 5.0625e-4) = 1.025e-3
    # (m4 = 2.5625e-4), kurt = m4 / m2^2 = 1.64; downside: min(r, 0)^2 = 0, 0.01, 0, 0 -> sqrt(0.01 / 4)
    m = return_moments(np.array([0.1, -0.1, 0.2, 0.0]))
    assert m.mean == pytest.approx(0.05, rel=1e-15)
    assert m.sd == pytest.approx(math.sqrt(0.05 / 3.0), rel=1e-15)
    assert m.downside == pytest.approx(0.05, rel=1e-15)
    assert m.skew == pytest.approx(0.0, abs=1e-12)
    assert m.kurt == pytest.approx(1.64, rel=1e-14)


@pytest.mark.parametrize("n", [2, 9, 129, 8_193, 1_000_000])
def test_return_moments_of_long_series_agree_with_numpy_to_rounding(n: int) -> None:
    rng = np.random.default_rng(n)
    r = rng.normal(0.0002, 1e-3, n)
    m = return_moments(r)
    d = r - float(np.mean(r))
    m2 = float(np.mean(d**2))
    assert m.mean == pytest.approx(float(np.mean(r)), rel=1e-12)
    assert m.sd == pytest.approx(float(np.std(r, ddof=1)), rel=1e-12)
    assert m.downside == pytest.approx(math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))), rel=1e-12)
    assert m.kurt == pytest.approx(float(np.mean(d**4)) / m2**2, rel=1e-12)
    # skewness is near 0 for a normal sample: compare on the scale of its terms, not relative to it
    assert m.skew == pytest.approx(float(np.mean(d**3)) / m2**1.5, abs=1e-12)


def _one_symbol(
    event_bar: list[int], cash_after: list[float], trades: list[list[float]], close: list[float]
) -> tuple[np.ndarray, list[np.ndarray], Timeline, ReplayResults]:
    """Return (union, closes, timeline, results) of hand-written events and closed trades of symbol 0."""
    n, events = len(close), len(event_bar)
    z = np.zeros(events, np.int64)
    bars = np.array(event_bar, np.int64)
    timeline = Timeline(z, z, z.astype(bool), z, z.astype(float), z, bars, z, z, z, z)
    results = ReplayResults(trade_columns(trades), np.array(cash_after), 0, 0.0, 0.0)
    return np.arange(n, dtype=np.int64), [np.array(close)], timeline, results


def test_equity_is_the_cash_after_each_bars_events_plus_the_marked_position() -> None:
    # Bars 0..4, closes 10, 11, 12, 13, 14. A long of 2 units bought at bar 1 (event 0) for 20 leaves
    # cash 80; sold at bar 3 (event 1) for 26: cash 106. Held on bars [1, 3): equity 80 + 2 * 11 = 102 at
    # bar 1 and 80 + 2 * 12 = 104 at bar 2; cash 100 before, 106 from bar 3.
    cols = [[0], [0], [1], [2.0], [10.0], [13.0], [0.0], [0.0], [0], [1]]
    close = [10.0, 11.0, 12.0, 13.0, 14.0]
    union, closes, timeline, results = _one_symbol([1, 3], [80.0, 106.0], cols, close)
    curve = build_equity(union, closes, timeline, results, 100.0)
    assert curve.equity.tolist() == [100.0, 102.0, 104.0, 106.0, 106.0]
    assert curve.held_any.tolist() == [False, True, True, False, False]
    assert curve.held_bars == {0: 2}


def test_a_short_is_its_collateral_less_the_buy_back_at_the_close() -> None:
    # A short of 2 units sold at 10 (event 0, bar 0) sets 20 aside: cash 80. Marked at 2 * 2 * 10 -
    # 2 * close: bar 0 (close 10) 80 + 20 = 100, bar 1 (close 12) 80 + 16 = 96. Bought back at 12
    # (event 1, bar 2): cash 80 + 2 * (2 * 10 - 12) = 96.
    cols = [[0], [0], [-1], [2.0], [10.0], [12.0], [0.0], [0.0], [0], [1]]
    union, closes, timeline, results = _one_symbol([0, 2], [80.0, 96.0], cols, [10.0, 12.0, 12.0])
    curve = build_equity(union, closes, timeline, results, 100.0)
    assert curve.equity.tolist() == [100.0, 96.0, 96.0]
    assert curve.held_bars == {0: 2}


def test_equity_refuses_overlapping_positions_and_unsorted_event_bars() -> None:
    # Two positions of one symbol on bars [0, 3) and [1, 2): the replay never produces that.
    ones, zeros = [1.0, 1.0], [0.0, 0.0]
    cols = [[0, 0], [0, 1], [1, 1], ones, ones, ones, zeros, zeros, [0, 1], [3, 2]]
    union, closes, timeline, results = _one_symbol([0, 1, 2, 3], [0.0] * 4, cols, [1.0] * 5)
    with pytest.raises(ValueError, match="equity: a symbol's positions overlap"):
        build_equity(union, closes, timeline, results, 1.0)
    union, closes, timeline, results = _one_symbol([2, 1], [0.0, 0.0], [[]] * 10, [1.0] * 3)
    with pytest.raises(ValueError, match="equity: the event bars are not sorted"):
        build_equity(union, closes, timeline, results, 1.0)
