"""PBO by CSCV and the deflated Sharpe ratio: hand-derived cases and the formulas written out plainly."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from backtest_core.metrics.extra import probabilistic_sharpe
from backtest_research.overfitting import (
    deflated_sharpe,
    expected_max_sharpe,
    metrics_per_bar_sharpe,
    per_bar_sharpe,
    probability_of_overfitting,
)


def test_a_winner_that_always_loses_out_of_sample_has_pbo_one() -> None:
    # trial 0 is good in block 0 and bad in block 1; trial 1 the mirror: whichever wins in sample loses
    block0 = np.array([[0.02, -0.01], [0.03, 0.0], [0.025, -0.005]])
    block1 = block0[:, ::-1]
    found = probability_of_overfitting(np.vstack([block0, block1]), splits=2)
    assert found is not None
    assert found.pbo == 1.0
    assert found.logits == pytest.approx((math.log(1 / 2), math.log(1 / 2)))  # rank 1 of 2: w = 1/3


def test_a_trial_best_in_every_block_has_pbo_zero() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.01, size=(64, 5))
    noise[:, 2] += 0.05  # trial 2 dominates everywhere
    found = probability_of_overfitting(noise, splits=8)
    assert found is not None and found.pbo == 0.0
    assert len(found.logits) == math.comb(8, 4)


def _pbo_plainly(returns: np.ndarray, splits: int) -> float:
    """The paper's procedure with Python's statistics module, one combination at a time."""
    bars, trials = returns.shape
    blocks = np.array_split(np.arange(bars), splits)

    def sharpe(rows: list[int], trial: int) -> float:
        values = [float(returns[i, trial]) for i in rows]
        return statistics.mean(values) / statistics.stdev(values)

    below = 0
    combos = list(itertools.combinations(range(splits), splits // 2))
    for chosen in combos:
        is_rows = [i for b in chosen for i in blocks[b]]
        oos_rows = [i for b in range(splits) if b not in chosen for i in blocks[b]]
        is_perf = [sharpe(is_rows, n) for n in range(trials)]
        best = is_perf.index(max(is_perf))
        oos_perf = [sharpe(oos_rows, n) for n in range(trials)]
        rank = sorted(oos_perf).index(oos_perf[best]) + 1
        w = rank / (trials + 1)
        below += math.log(w / (1 - w)) <= 0
    return below / len(combos)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pbo_equals_the_procedure_written_out_plainly(seed: int) -> None:
    returns = np.random.default_rng(seed).normal(0.0005, 0.01, size=(120, 7))
    found = probability_of_overfitting(returns, splits=6)
    assert found is not None
    assert found.pbo == pytest.approx(_pbo_plainly(returns, 6), abs=1e-12)


def test_pbo_needs_two_trials_and_two_bars_a_block() -> None:
    assert probability_of_overfitting(np.zeros((100, 1)), splits=16) is None
    assert probability_of_overfitting(np.zeros((31, 3)), splits=16) is None
    with pytest.raises(ValueError, match="even number"):
        probability_of_overfitting(np.zeros((100, 3)), splits=5)


def test_expected_max_sharpe_of_the_paper() -> None:
    # sqrt(V) * ((1 - g) Z^-1(1 - 1/N) + g Z^-1(1 - 1/(N e))) for N = 100, V = 0.5 (hand-evaluated)
    z = statistics.NormalDist().inv_cdf
    g = 0.5772156649015329
    expected = math.sqrt(0.5) * ((1 - g) * z(0.99) + g * z(1 - 1 / (100 * math.e)))
    assert expected_max_sharpe(100, 0.5) == pytest.approx(expected, rel=1e-15)
    assert expected_max_sharpe(100, 0.5) == pytest.approx(
        1.7894, abs=5e-4
    )  # 0.7071 * (0.4228 * 2.3263 + 0.5772 * 2.6799)


def test_deflated_sharpe_is_the_psr_against_the_expected_maximum() -> None:
    rng = np.random.default_rng(11)
    best = rng.normal(0.002, 0.01, 500)
    sharpes = [float(s) for s in rng.normal(0.0, 0.05, 40)]
    benchmark = expected_max_sharpe(40, float(np.var(sharpes, ddof=1)))
    assert deflated_sharpe(best, sharpes) == pytest.approx(probabilistic_sharpe(best, benchmark), rel=1e-15)
    # more trials with the same spread raise the bar: the deflated figure falls below the plain PSR
    assert deflated_sharpe(best, sharpes) < probabilistic_sharpe(best)  # type: ignore[operator]
    assert deflated_sharpe(best, sharpes[:1]) is None


def test_per_bar_sharpe_is_mean_over_sample_std() -> None:
    assert per_bar_sharpe(np.array([0.01, 0.03])) == pytest.approx(0.02 / math.sqrt(0.0002))
    assert per_bar_sharpe(np.array([0.01, 0.01])) is None


def test_a_stored_backtests_per_bar_sharpe_is_its_annual_sharpe_over_the_root_of_its_periods() -> None:
    assert metrics_per_bar_sharpe({"sharpe": 2.0, "periods_per_year": 4.0}) == 1.0
    assert metrics_per_bar_sharpe({"sharpe": -1.0, "periods_per_year": 365.0}) == -1.0 / math.sqrt(365.0)
    assert metrics_per_bar_sharpe({"sharpe": None, "periods_per_year": 365.0}) is None
    assert metrics_per_bar_sharpe({"sharpe": 1.0, "periods_per_year": 0.0}) is None
    assert metrics_per_bar_sharpe(None) is None
