"""Combining equity curves: alignment by time, weights, correlation, statistics by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_gateway.portfolio import Curve, align, combine, correlation, statistics

pytestmark = pytest.mark.unit

DAY = 86_400_000_000_000


def curve(days: list[int], equity: list[float]) -> Curve:
    return Curve(np.array(days, dtype=np.int64) * DAY, np.array(equity, dtype=float))


def test_curves_align_on_union_of_times_with_forward_fill_and_flat_start():
    a = curve([0, 1, 2, 3], [100, 110, 121, 110])
    b = curve([1, 3], [50, 60])  # starts a day later, misses day 2

    times, growth = align([a, b])

    assert list(times // DAY) == [0, 1, 2, 3]
    np.testing.assert_allclose(growth[0], [1.0, 1.1, 1.21, 1.1])
    np.testing.assert_allclose(growth[1], [1.0, 1.0, 1.0, 1.2])


def test_weighted_combination_starts_at_capital_and_normalises_weights():
    a = curve([0, 1, 2], [100, 120, 90])
    b = curve([0, 1, 2], [10, 10, 15])

    combined = combine([a, b], [3.0, 1.0], capital=1000.0)

    # 750 * growth_a + 250 * growth_b
    np.testing.assert_allclose(combined.value, [1000.0, 750 * 1.2 + 250, 750 * 0.9 + 250 * 1.5])
    assert combined.periods_per_year == pytest.approx(365.0)


def test_correlation_of_returns_is_pearson_and_none_without_variance():
    a = np.array([[1.0, 1.1, 1.0, 1.2], [1.0, 2.0, 1.0, 3.0], [1.0, 1.0, 1.0, 1.0]])

    matrix, counts = correlation(a)

    ra, rb = np.diff(a[0]) / a[0][:-1], np.diff(a[1]) / a[1][:-1]
    assert matrix[0][1] == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]))
    assert matrix[0][0] == pytest.approx(1.0)
    assert matrix[2][2] is None and matrix[0][2] is None
    assert counts == [[3] * 3] * 3


def test_statistics_match_hand_computation():
    value = np.array([100.0, 110.0, 99.0, 120.0])

    stats = statistics(value, ppy=365.0)

    assert stats["total_return_pct"] == pytest.approx(20.0)
    assert stats["max_drawdown_pct"] == pytest.approx(10.0)
    assert stats["max_drawdown_duration_bars"] == 1
    returns = np.array([0.1, -0.1, 120 / 99 - 1])
    assert stats["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    # CAGR over the number of bars (4), as a backtest's own (docs/metrics.md): 1.2^(365/4) - 1.
    assert stats["cagr_pct"] == pytest.approx((1.2 ** (365 / 4) - 1) * 100)


def test_correlation_uses_only_the_steps_both_curves_exist_and_counts_them():
    a = curve([0, 1, 2, 3, 4, 5], [100, 110, 99, 120, 114, 130])
    b = curve([2, 3, 4, 5, 6], [50, 55, 50, 60, 66])  # starts at day 2, ends a day after a

    combined = combine([a, b], [1.0, 1.0], capital=1.0)

    # both exist from day 2 to day 5: steps 2->3, 3->4, 4->5
    ra = np.array([120 / 99, 114 / 120, 130 / 114]) - 1
    rb = np.array([55 / 50, 50 / 55, 60 / 50]) - 1
    assert combined.correlation[0][1] == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]))
    assert combined.correlation[1][0] == combined.correlation[0][1]
    assert combined.overlap == [[5, 3], [3, 4]]
    assert combined.correlation[0][0] == pytest.approx(1.0)
