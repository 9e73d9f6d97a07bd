"""Buy-and-hold, SQN, Kelly fraction and probabilistic Sharpe on hand-derived cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_core.metrics.extra import (
    buy_and_hold_return_pct,
    kelly_fraction,
    probabilistic_sharpe,
    system_quality_number,
)
from scipy import stats


def test_buy_and_hold_is_the_equal_weight_mean_of_first_to_last_close() -> None:
    assert buy_and_hold_return_pct([np.array([100.0, 90.0, 120.0])]) == pytest.approx(20.0)
    # +50% and -50%: an equal-weight basket ends where it started
    assert buy_and_hold_return_pct([np.array([100.0, 150.0]), np.array([50.0, 25.0])]) == pytest.approx(0.0)
    assert buy_and_hold_return_pct([np.array([])]) is None


def test_sqn_of_pnls_1_2_3_is_sqrt3_times_mean_2_over_sd_1() -> None:
    assert system_quality_number([1.0, 2.0, 3.0]) == pytest.approx(2.0 * math.sqrt(3.0), rel=1e-15)
    assert system_quality_number([5.0]) is None
    assert system_quality_number([-3.0, -3.0, -3.0]) is None  # no dispersion: no SQN, not -1e16


def test_kelly_of_two_wins_of_10_and_a_loss_of_5_is_one_half() -> None:
    # win rate 2/3, payoff 10 / 5 = 2: 2/3 - (1/3) / 2 = 1/2
    assert kelly_fraction([10.0, 10.0, -5.0]) == pytest.approx(0.5, rel=1e-15)
    assert kelly_fraction([10.0, 3.0]) is None  # no loss: undefined
    assert kelly_fraction([-1.0]) is None


def test_psr_of_a_zero_mean_series_is_one_half() -> None:
    assert probabilistic_sharpe(np.array([0.01, -0.01, 0.02, -0.02])) == pytest.approx(0.5, abs=1e-15)


def test_psr_equals_the_papers_formula_computed_with_scipy() -> None:
    r = np.array([0.01, -0.005, 0.02, 0.0, 0.015, -0.01, 0.03, 0.005])
    sr = r.mean() / r.std(ddof=1)
    skew, kurt = stats.skew(r, bias=True), stats.kurtosis(r, fisher=False, bias=True)
    expected = stats.norm.cdf(sr * math.sqrt(len(r) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert probabilistic_sharpe(r) == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1.0


def test_psr_is_none_without_enough_returns_or_dispersion() -> None:
    assert probabilistic_sharpe(np.array([0.01, 0.02])) is None
    assert probabilistic_sharpe(np.full(10, 0.001)) is None
    assert probabilistic_sharpe(np.array([0.01, np.nan, 0.02, 0.0])) is None
