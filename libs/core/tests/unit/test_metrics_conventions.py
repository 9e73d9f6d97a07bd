"""Hand-derived metrics: every number below is worked out by hand in the comment above it.

The conventions (docs/metrics.md): per-bar returns between consecutive closes, sample standard
deviation (ddof=1), downside deviation sqrt(mean(min(r, 0)^2)), annualised by sqrt(365) for 1d bars;
CAGR over `bars` periods (the start equity is the equity before the first bar); drawdown duration in
bars closed below the running peak; exposure is the share of bars whose close finds a position open.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.metrics.performance import (
    bar_returns,
    cagr_pct,
    sharpe_ratio,
    sortino_ratio,
    trade_statistics,
)

from .scripted import bars, config, scripted

SQRT_365 = math.sqrt(365.0)
UP_DOWN_UP = [10, 11, 10, 10.5, 12, 11.5]


def _run_close_fill(closes: list[float], plan):  # type: ignore[no-untyped-def]
    c = bars("AAA", [(x, x, x, x) for x in closes])
    return run_backtest(config(scripted(plan), ["AAA"], fill="close"), {"AAA": c})


def test_sharpe_and_sortino_of_a_four_bar_curve_use_ddof_1_and_sqrt_365() -> None:
    # BUY at bar 0's close 10 with 1000 cash: 100 units; closes 10, 11, 10.45, 12.54 give equity
    # 1000, 1100, 1045, 1254 and returns 0.1, -0.05, 0.2 (3 returns for 4 bars).
    # mean = 0.25 / 3 = 0.08333; deviations 0.01667, -0.13333, 0.11667; squares sum to 0.031667;
    # sample variance = 0.031667 / 2 = 0.015833, sd = 0.125831; Sharpe = 0.08333 / 0.125831 * sqrt(365)
    # = 0.662266 * 19.104973 = 12.6526.
    # Downside deviation = sqrt((0 + 0.05^2 + 0) / 3) = sqrt(0.00083333) = 0.0288675;
    # Sortino = 0.08333 / 0.0288675 * sqrt(365) = 2.886751 * 19.104973 = 55.1513.
    r = _run_close_fill([10, 11, 10.45, 12.54], {0: ("BUY", None, None, None)})
    assert [p.equity for p in r.equity_curve] == pytest.approx([1000, 1100, 1045, 1254], rel=1e-12)
    mean = 0.25 / 3
    sd = math.sqrt(((0.1 - mean) ** 2 + (-0.05 - mean) ** 2 + (0.2 - mean) ** 2) / 2)
    assert r.metrics.sharpe == pytest.approx(mean / sd * SQRT_365, rel=1e-9)
    assert r.metrics.sharpe == pytest.approx(12.6526, abs=1e-4)
    assert r.metrics.sortino == pytest.approx(mean / math.sqrt(0.05**2 / 3) * SQRT_365, rel=1e-9)
    assert r.metrics.sortino == pytest.approx(55.1513, abs=1e-4)
    assert (r.metrics.max_drawdown_pct, r.metrics.max_drawdown_duration_bars) == (pytest.approx(5.0), 1)


def test_cagr_compounds_over_the_number_of_bars_and_calmar_divides_by_max_drawdown() -> None:
    # Equity 1000, 1100, 1000, 1050, 1200, 1200 (BUY at close 10, SELL at bar 4's close 12).
    # 6 bars = 6/365 years from the start cash: CAGR = (1200/1000)^(365/6) - 1 = 1.2^60.8333 - 1
    # = e^(60.8333 * 0.1823216) - 1 = e^11.09123 - 1 = 65,593.2 - 1 -> 6,559,225 %.
    # Max drawdown 100/1100 = 9.0909 %; Calmar = 6,559,225 / 9.0909 = 721,515.
    r = _run_close_fill(UP_DOWN_UP, {0: ("BUY", None, None, None), 4: ("SELL", None, None, None)})
    assert [p.equity for p in r.equity_curve] == pytest.approx([1000, 1100, 1000, 1050, 1200, 1200])
    cagr = (1.2 ** (365 / 6) - 1) * 100
    assert r.metrics.cagr_pct == pytest.approx(cagr, rel=1e-9)
    assert r.metrics.cagr_pct == pytest.approx(6_559_225, rel=1e-6)
    assert r.metrics.max_drawdown_pct == pytest.approx(100 / 11)
    assert r.metrics.calmar == pytest.approx(cagr / (100 / 11), rel=1e-9)


def test_drawdown_duration_counts_the_bars_closed_below_the_running_peak() -> None:
    # Same run: peak 1100 at bar 1; bars 2 (1000) and 3 (1050) close below it; bar 4 (1200) is a new
    # peak: the longest underwater stretch is 2 bars.
    r = _run_close_fill(UP_DOWN_UP, {0: ("BUY", None, None, None), 4: ("SELL", None, None, None)})
    assert r.metrics.max_drawdown_duration_bars == 2


def test_exposure_is_the_share_of_bars_whose_close_finds_a_position_open() -> None:
    # Bought at bar 0's close, sold at bar 4's close: the closes of bars 0, 1, 2, 3 find it open,
    # bars 4 and 5 do not: 4 / 6 = 66.667 %.
    r = _run_close_fill(UP_DOWN_UP, {0: ("BUY", None, None, None), 4: ("SELL", None, None, None)})
    assert r.metrics.exposure_pct == pytest.approx(400 / 6)
    assert r.per_symbol[0].exposure_pct == pytest.approx(400 / 6)


def test_cagr_over_periods_is_none_for_zero_periods_or_non_positive_equity() -> None:
    # 1000 -> 1100 over 365 daily periods is one year: 10 %.
    assert cagr_pct(1000.0, 1100.0, 365, 365.0) == pytest.approx(10.0)
    assert cagr_pct(1000.0, 1100.0, 0, 365.0) is None
    assert cagr_pct(1000.0, 0.0, 10, 365.0) is None


def test_a_run_of_identical_losses_has_no_sharpe() -> None:
    # Equity 1000 * 0.99^k: every return is -0.01 up to rounding (sd ~ 7e-17, which used to give a
    # Sharpe of -2.9e15). The standard deviation is below 1e-12 of the mean's magnitude: None.
    # Sortino stays defined: downside deviation = 0.01, so Sortino = -0.01 / 0.01 * sqrt(365).
    r = bar_returns(1000.0 * 0.99 ** np.arange(10.0))
    assert sharpe_ratio(r, 365.0) is None
    assert sortino_ratio(r, 365.0) == pytest.approx(-SQRT_365)


def test_a_backtest_losing_the_same_fraction_every_bar_reports_no_sharpe() -> None:
    # Closes 100 * 0.97^k over 10 bars, all in at bar 0's close: equity 1000 * 0.97^k, every return
    # -0.03 up to rounding (this run used to report a Sharpe of -3.9e15).
    r = _run_close_fill([100 * 0.97**k for k in range(10)], {0: ("BUY", None, None, None)})
    assert r.metrics.sharpe is None
    assert r.metrics.sortino == pytest.approx(-SQRT_365)


def test_gains_with_a_rounding_sized_loss_have_no_sortino() -> None:
    # Returns 0.01, 0.02, -1e-18: the downside deviation sqrt(1e-36 / 3) = 5.8e-19 is below 1e-12 of
    # the mean 0.01: None rather than 1.7e16 * sqrt(365).
    assert sortino_ratio(np.array([0.01, 0.02, -1e-18]), 365.0) is None
    assert sharpe_ratio(np.array([0.01, 0.02, -1e-18]), 365.0) == pytest.approx(0.01 / 0.01 * SQRT_365)


def test_trade_statistics_count_closed_trades_and_report_the_open_one_apart() -> None:
    # Closed pnls 100, -50, 30 and a still-open +500 (marked at the last close, not a win):
    # count 3, open 1, win rate 2/3 = 66.667 %, profit factor 130 / 50 = 2.6, expectancy 80 / 3,
    # average win 130 / 2 = 65, average loss -50.
    s = trade_statistics(np.array([100.0, -50.0, 30.0, 500.0]), np.array([False, False, False, True]))
    assert (s.trade_count, s.open_trades) == (3, 1)
    assert s.win_rate_pct == pytest.approx(200 / 3)
    assert s.profit_factor == pytest.approx(2.6)
    assert s.expectancy == pytest.approx(80 / 3)
    assert (s.avg_win, s.avg_loss) == (pytest.approx(65.0), pytest.approx(-50.0))


def test_trade_statistics_of_only_an_open_trade_are_none() -> None:
    s = trade_statistics(np.array([500.0]), np.array([True]))
    assert (s.trade_count, s.open_trades) == (0, 1)
    assert (s.win_rate_pct, s.profit_factor, s.expectancy, s.avg_win, s.avg_loss) == (None,) * 5


def test_trade_statistics_reject_a_mask_of_another_length() -> None:
    with pytest.raises(ValueError, match="expected one still-open flag per trade \\(2\\), got 1"):
        trade_statistics(np.array([1.0, 2.0]), np.array([True]))


def test_a_position_open_at_the_end_is_open_trades_in_the_equity_and_not_won_or_lost() -> None:
    # Closes 10, 11, 10, 10.5, 12, 11.5: BUY at bar 0's close (100 units), SELL at bar 1's close 11
    # (+100, closed and won), BUY at bar 2's close 10 (110 units), still open after bar 5: marked at
    # 11.5, pnl 110 * 1.5 = +165, in the equity (1100 + 165 = 1265) but neither a win nor a trade.
    plan = {0: ("BUY", None, None, None), 1: ("SELL", None, None, None), 2: ("BUY", None, None, None)}
    r = _run_close_fill(UP_DOWN_UP, plan)
    assert [(t.exit_reason, t.pnl) for t in r.trades] == [("signal", 100.0), ("end_of_data", 165.0)]
    assert r.metrics.final_equity == pytest.approx(1265.0)
    assert (r.metrics.trade_count, r.metrics.open_trades) == (1, 1)
    assert (r.metrics.win_rate_pct, r.metrics.expectancy, r.metrics.avg_win) == (100.0, 100.0, 100.0)
    assert (r.metrics.avg_loss, r.metrics.profit_factor, r.metrics.sqn) == (None, None, None)
    assert (r.per_symbol[0].trade_count, r.per_symbol[0].net_pnl) == (1, pytest.approx(265.0))
    # Exposure: the closes of bars 0 and 2, 3, 4 find a position open, and so does bar 5's, where the
    # open one is marked; bar 1 closed the first trade: 5 / 6 = 83.333 %.
    assert r.metrics.exposure_pct == pytest.approx(500 / 6)
    assert r.per_symbol[0].exposure_pct == pytest.approx(500 / 6)
