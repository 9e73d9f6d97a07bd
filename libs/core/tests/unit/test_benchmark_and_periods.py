"""Alpha/beta against buy-and-hold and the monthly/yearly returns table on hand-derived cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_core.engine.equity import closes_on_grid
from backtest_core.engine.run import run_backtest
from backtest_core.metrics.extra import alpha_beta, buy_and_hold_value
from backtest_core.model.config import BacktestConfig
from backtest_core.model.period_returns import period_returns
from backtest_testinfra import shipped_candles

from .scripted import DAY, T0, bars, config, scripted

JAN_30 = T0 + 29 * DAY  # 2020-01-30


def test_returns_twice_the_benchmarks_have_beta_2_and_no_alpha() -> None:
    b = np.array([0.01, -0.02, 0.03, 0.0])
    assert alpha_beta(2.0 * b, b, 365.0) == (pytest.approx(0.0, abs=1e-12), pytest.approx(2.0, rel=1e-12))


def test_the_benchmark_plus_a_constant_has_beta_1_and_that_constant_compounded_as_alpha() -> None:
    # r = b + 0.001: cov(r, b) = var(b), beta 1; mean(r - b) = 0.001 per bar, annualised
    # (1.001)^365 - 1 = e^(365 * 0.0009995) - 1 = 0.44025 -> 44.025 %.
    b = np.array([0.01, -0.02, 0.03, 0.0])
    alpha, beta = alpha_beta(b + 0.001, b, 365.0)
    assert beta == pytest.approx(1.0, rel=1e-12)
    assert alpha == pytest.approx((1.001**365 - 1) * 100, rel=1e-12)
    assert alpha == pytest.approx(44.025, abs=1e-3)


def test_alpha_and_beta_are_none_against_a_flat_benchmark_or_too_few_returns() -> None:
    assert alpha_beta(np.array([0.01, 0.02]), np.array([0.0, 0.0]), 365.0) == (None, None)
    assert alpha_beta(np.array([0.01]), np.array([0.02]), 365.0) == (None, None)
    with pytest.raises(ValueError, match=r"one benchmark return per return \(2\), got 1"):
        alpha_beta(np.array([0.01, 0.02]), np.array([0.02]), 365.0)


def test_buy_and_hold_holds_a_late_symbols_share_as_cash_until_its_first_close() -> None:
    # A: 100 -> 110 -> 121 (+10 % a bar); B starts at bar 1 at 50, then 40. Half in each:
    # bar 0: (1.0 + 1) / 2 = 1.0; bar 1: (1.1 + 1.0) / 2 = 1.05; bar 2: (1.21 + 0.8) / 2 = 1.005.
    value = buy_and_hold_value([np.array([100.0, 110.0, 121.0]), np.array([0.0, 50.0, 40.0])])
    assert value.tolist() == pytest.approx([1.0, 1.05, 1.005], rel=1e-15)


def test_period_returns_compound_each_month_from_the_previous_months_last_close() -> None:
    # Bars 2020-01-30, 01-31, 02-01, 02-02 with equity 1010, 1100, 990, 1210 from a start of 1000:
    # January 1100 / 1000 - 1 = 10 %, February 1210 / 1100 - 1 = 10 %; the year 2020: 21 %.
    times = JAN_30 + DAY * np.arange(4, dtype=np.int64)
    equity = np.array([1010.0, 1100.0, 990.0, 1210.0])
    months = period_returns(times, equity, 1000.0, "month")
    assert [m.period for m in months] == ["2020-01", "2020-02"]
    assert [m.return_pct for m in months] == pytest.approx([10.0, 10.0], rel=1e-12)
    [year] = period_returns(times, equity, 1000.0, "year")
    assert (year.period, year.return_pct) == ("2020", pytest.approx(21.0))


def test_a_period_after_the_equity_reached_zero_has_no_return() -> None:
    times = JAN_30 + DAY * np.array([0, 3], dtype=np.int64)
    months = period_returns(times, np.array([0.0, 0.0]), 1000.0, "month")
    assert [(m.period, m.return_pct) for m in months] == [("2020-01", -100.0), ("2020-02", None)]


def test_a_backtest_reports_its_months_years_and_alpha_beta_against_holding_the_symbol() -> None:
    # Closes 10, 11, 10, 10.5, 12, 11.5 from 2020-01-30; BUY at bar 0's close 10, SELL at bar 4's
    # close 12: equity 1000, 1100, 1000, 1050, 1200, 1200. January (bars 0, 1): 1100 / 1000 = +10 %;
    # February (bars 2-5): 1200 / 1100 - 1 = 9.0909 %. Buy-and-hold of the closes is the benchmark.
    closes = [10, 11, 10, 10.5, 12, 11.5]
    c = bars("AAA", [(x, x, x, x) for x in closes], start_day=29)
    plan = {29: ("BUY", None, None, None), 33: ("SELL", None, None, None)}
    r = run_backtest(config(scripted(plan), ["AAA"], fill="close"), {"AAA": c})
    assert [p.equity for p in r.equity_curve] == pytest.approx([1000, 1100, 1000, 1050, 1200, 1200])
    assert [(m.period, m.return_pct) for m in r.monthly_returns] == [
        ("2020-01", pytest.approx(10.0)),
        ("2020-02", pytest.approx(100 / 11)),
    ]
    assert [(y.period, y.return_pct) for y in r.yearly_returns] == [("2020", pytest.approx(20.0))]
    # Strategy returns 0.1, -1/11, 0.05, 1/7, 0; the benchmark's 0.1, -1/11, 0.05, 1/7, -1/24.
    s = np.array([0.1, -1 / 11, 0.05, 1 / 7, 0.0])
    b = np.array([0.1, -1 / 11, 0.05, 1 / 7, -1 / 24])
    beta = np.cov(s, b)[0, 1] / np.var(b, ddof=1)
    alpha = ((1 + np.mean(s - beta * b)) ** 365 - 1) * 100
    assert r.metrics.beta == pytest.approx(beta, rel=1e-12)
    assert r.metrics.alpha_pct == pytest.approx(alpha, rel=1e-9)
    assert 0.8 < beta < 1.0 and math.isfinite(alpha)


def test_three_symbols_of_different_ranges_are_benchmarked_against_their_equal_weight_holding() -> None:
    # BTCUSD starts 2014-11-28, ETHUSD 2017-11, LTCUSD in between: each share waits as cash until its
    # symbol's first bar; the benchmark ends at the mean of the three first-to-last close returns.
    candles = {s: shipped_candles(s) for s in ("BTCUSD", "ETHUSD", "LTCUSD")}
    union = np.unique(np.concatenate([c.open_time for c in candles.values()]))
    value = buy_and_hold_value([closes_on_grid(c, union) for c in candles.values()])
    each = [c.close[-1] / c.close[0] - 1 for c in candles.values()]
    assert 100 * (value[-1] - 1) == pytest.approx(100 * np.mean(each), rel=1e-12)
    assert value[0] == 1.0
    strategy = BacktestConfig(strategy="sma_cross", symbols=list(candles), interval="1d", size=0.3)
    m = run_backtest(strategy, candles).metrics
    assert m.buy_and_hold_return_pct == pytest.approx(100 * np.mean(each), rel=1e-12)
    assert m.beta is not None and 0.0 < m.beta < 1.0 and m.alpha_pct is not None
