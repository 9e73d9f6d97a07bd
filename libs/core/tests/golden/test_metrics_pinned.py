"""Every Metrics field and the first/last trades of sma_cross 10/30 on the shipped BTCUSD, ETHUSD daily bars.

Setup: cash 1,000,000, 0.1% maker and taker fees, fill at the next open, all in. The pins were computed
once with the engine; the peer tests below check each against vectorbt (the same fills, fees and
marking) and empyrical on the conventions of docs/metrics.md. A change of any pinned number is a
change of results: say why in the commit, or it is a bug.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from backtest_core.engine.orchestrator import compute_signals
from backtest_core.engine.run import run_backtest
from backtest_core.metrics.performance import bar_returns
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult, Metrics
from backtest_core.strategy.builtins import SmaCrossStrategy
from backtest_testinfra import shipped_candles

FEE = 0.001
CASH = 1_000_000.0
REL = 1e-12


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


PINNED: dict[str, dict[str, Any]] = {
    "BTCUSD": {
        "start_equity": 1000000.0,
        "final_equity": 30476637.281981636,
        "total_return_pct": 2947.6637281981634,
        "cagr_pct": 95.17665334690786,
        "sharpe": 1.5171932202528882,
        "sortino": 2.360702342753412,
        "calmar": 1.6383238946363832,
        "max_drawdown_pct": 58.09391760597607,
        "max_drawdown_duration_bars": 513,
        # trade statistics over the 33 closed trades; the open one is open_trades
        "win_rate_pct": 48.484848484848484,
        "profit_factor": 1.999983326249044,
        "expectancy": 749267.6763481408,
        "avg_win": 3090754.9323899057,
        "avg_loss": -1454485.0352205788,
        "trade_count": 33,
        "exposure_pct": 55.924932975871315,
        "fees_paid": 754097.100050296,
        "bars": 1865,
        "periods_per_year": 365.0,
        "open_trades": 1,
        "buy_and_hold_return_pct": 2214.630062719252,
        "sqn": 0.8926977919287825,
        "kelly_criterion": 0.2424222213466711,
        "probabilistic_sharpe": 0.9997425505647584,
        "alpha_pct": 43.50243330737342,
        "beta": 0.49984622341039453,
    },
    "ETHUSD": {
        "start_equity": 1000000.0,
        "final_equity": 914566.3398643077,
        "total_return_pct": -8.543366013569232,
        "cagr_pct": -4.052212286034685,
        "sharpe": 0.19435103322698455,
        "sortino": 0.28106831079647865,
        "calmar": -0.07196601535823974,
        "max_drawdown_pct": 56.30730374417941,
        "max_drawdown_duration_bars": 610,
        "win_rate_pct": 30.76923076923077,
        "profit_factor": 0.7978836048820738,
        "expectancy": -15712.950687689801,
        "avg_win": 201594.69806899314,
        "avg_loss": -112294.12791288222,
        "trade_count": 13,
        "exposure_pct": 31.218274111675125,
        "fees_paid": 25721.390868556588,
        "bars": 788,
        "periods_per_year": 365.0,
        "open_trades": 1,
        "buy_and_hold_return_pct": -48.79870534047055,
        "sqn": -0.30255566473394796,
        "kelly_criterion": -0.07794327349974378,
        "probabilistic_sharpe": 0.6122630413606174,
        "alpha_pct": 5.046495546935844,
        "beta": 0.29074825915843094,
    },
}

FIRST_AND_LAST_TRADES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "BTCUSD": (
        {"symbol": "BTCUSD", "side": "long", "units": 4198.012350300454, "entry_time": _day(2015, 2, 3),
         "entry_price": 237.97, "exit_time": _day(2015, 2, 4), "exit_price": 227.35, "exit_reason": "signal",
         "pnl": -46536.31026703265, "return_pct": -4.6582846577299675, "fees": 1953.4191068418074,
         "bars_held": 1},
        {"symbol": "BTCUSD", "side": "long", "units": 3499.244764272264, "entry_time": _day(2020, 1, 5),
         "entry_price": 7344.48, "exit_time": _day(2020, 1, 18), "exit_price": 8709.49,
         "exit_reason": "end_of_data", "pnl": 4750803.962492982, "return_pct": 18.485522732719,
         "fees": 25700.133186302355, "bars_held": 12},
    ),
    "ETHUSD": (
        {"symbol": "ETHUSD", "side": "long", "units": 1178.067215803065, "entry_time": _day(2018, 3, 6),
         "entry_price": 848.0, "exit_time": _day(2018, 3, 7), "exit_price": 813.09, "exit_reason": "signal",
         "pnl": -43083.20217518328, "return_pct": -4.312628537735845, "fees": 1956.8756714983133,
         "bars_held": 1},
        {"symbol": "ETHUSD", "side": "long", "units": 5558.997932557183, "entry_time": _day(2020, 1, 8),
         "entry_price": 143.0, "exit_time": _day(2020, 1, 18), "exit_price": 164.52,
         "exit_reason": "end_of_data", "pnl": 118834.69880427497, "return_pct": 14.948951048951058,
         "fees": 794.9367043556772, "bars_held": 9},
    ),
}  # fmt: skip

SYMBOLS = sorted(PINNED)


def _run(symbol: str) -> BacktestResult:
    candles = shipped_candles(symbol)
    config = BacktestConfig(
        strategy="sma_cross",
        params={"fast": 10, "slow": 30},
        symbols=[symbol],
        interval="1d",
        cash=CASH,
        fees={"maker": FEE, "taker": FEE},
        fill="next_open",
        size=1.0,
    )
    return run_backtest(config, {symbol: candles})


RESULTS = {symbol: _run(symbol) for symbol in SYMBOLS}


def _vectorbt(symbol: str) -> Any:
    """Return vectorbt's portfolio of the same signals: next-open fills, all in, the same fee."""
    import vectorbt as vbt

    candles = shipped_candles(symbol)
    side = compute_signals(SmaCrossStrategy(fast=10, slow=30), candles, "1d").side
    index = pd.to_datetime(candles.open_time)
    entries = pd.Series(np.r_[False, (side == 1)[:-1]], index=index)
    exits = pd.Series(np.r_[False, (side == -1)[:-1]], index=index)
    close = pd.Series(candles.close, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(
            close, entries, exits, price=pd.Series(candles.open, index=index), size=np.inf,
            init_cash=CASH, fees=FEE, freq="1D",
        )  # fmt: skip


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_metric_of_sma_cross_on_shipped_daily_data_is_pinned(symbol: str) -> None:
    metrics = RESULTS[symbol].metrics.model_dump()
    assert set(PINNED[symbol]) == set(Metrics.model_fields)  # a new field must be pinned here too
    assert metrics == pytest.approx(PINNED[symbol], rel=REL)


PER_SYMBOL = {
    "BTCUSD": {"symbol": "BTCUSD", "trade_count": 33, "win_rate_pct": 48.484848484848484,
               "net_pnl": 29476637.281981632, "profit_factor": 1.999983326249044,
               "fees_paid": 754097.1000502964, "exposure_pct": 55.924932975871315},
    "ETHUSD": {"symbol": "ETHUSD", "trade_count": 13, "win_rate_pct": 30.76923076923077,
               "net_pnl": -85433.66013569244, "profit_factor": 0.7978836048820738,
               "fees_paid": 25721.390868556588, "exposure_pct": 31.218274111675125},
}  # fmt: skip


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_the_per_symbol_row_of_a_one_symbol_run_is_pinned_and_agrees_with_the_metrics(symbol: str) -> None:
    result = RESULTS[symbol]
    [row] = [item.model_dump() for item in result.per_symbol]
    assert row == pytest.approx(PER_SYMBOL[symbol], rel=REL)
    m = result.metrics
    assert (row["trade_count"], row["win_rate_pct"], row["exposure_pct"]) == (
        m.trade_count,
        m.win_rate_pct,
        pytest.approx(m.exposure_pct, rel=1e-15),
    )
    # net pnl holds the open position's mark too: it is the equity's change
    assert row["net_pnl"] == pytest.approx(m.final_equity - m.start_equity, rel=1e-12)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_first_and_last_trades_of_sma_cross_on_shipped_daily_data_are_pinned(symbol: str) -> None:
    trades = RESULTS[symbol].trades
    first, last = FIRST_AND_LAST_TRADES[symbol]
    assert trades[0].model_dump() == pytest.approx(first, rel=REL)
    assert trades[len(trades) - 1].model_dump() == pytest.approx(last, rel=REL)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_return_and_drawdown_metrics_match_vectorbt(symbol: str) -> None:
    m, pf = RESULTS[symbol].metrics, _vectorbt(symbol)
    year = "365D"
    assert m.final_equity == pytest.approx(pf.final_value(), rel=1e-9)
    assert m.total_return_pct == pytest.approx(100 * pf.total_return(), rel=1e-9)
    assert m.fees_paid == pytest.approx(pf.orders.fees.sum(), rel=1e-9)
    assert m.max_drawdown_pct == pytest.approx(-100 * pf.max_drawdown(), rel=1e-9)
    assert m.max_drawdown_duration_bars == pf.drawdowns.max_duration() / pd.Timedelta("1D")
    # Exposure: the share of bars whose close finds a position open, the open one's last bar included.
    assert m.exposure_pct == pytest.approx(100 * pf.position_mask().mean(), rel=1e-12)
    # CAGR and Calmar: vectorbt's annualised return over the number of bars.
    assert m.cagr_pct == pytest.approx(100 * pf.annualized_return(year_freq=year), rel=1e-9)
    assert m.calmar == pytest.approx(pf.calmar_ratio(year_freq=year), rel=1e-9)
    # Sharpe/Sortino: the returns between consecutive closes; vectorbt's portfolio returns add a first
    # return from the start cash to the first close, which is 0 here (nothing fills in bar 0).
    returns = pf.returns()
    assert returns.iloc[0] == 0.0
    acc = returns.iloc[1:].vbt.returns(freq="1D", year_freq=year)
    assert m.sharpe == pytest.approx(acc.sharpe_ratio(), rel=1e-9)
    assert m.sortino == pytest.approx(acc.sortino_ratio(), rel=1e-9)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_sharpe_sortino_and_cagr_match_empyrical_on_the_same_returns(symbol: str) -> None:
    import empyrical

    result = RESULTS[symbol]
    equity = np.array([p.equity for p in result.equity_curve])
    r = bar_returns(equity)
    m = result.metrics
    assert m.sharpe == pytest.approx(empyrical.sharpe_ratio(r, annualization=365), rel=1e-9)
    assert m.sortino == pytest.approx(empyrical.sortino_ratio(r, annualization=365), rel=1e-9)
    # empyrical annualises over the number of returns given: prepend the start cash's 0 return.
    assert m.cagr_pct == pytest.approx(
        100 * empyrical.annual_return(np.r_[0.0, r], annualization=365), rel=1e-9
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_trade_statistics_are_over_closed_trades_as_vectorbt_counts_them(symbol: str) -> None:
    s, pf = RESULTS[symbol].metrics, _vectorbt(symbol)
    closed = pf.trades.closed
    assert (s.trade_count, s.open_trades) == (closed.count(), pf.trades.open.count())
    assert s.win_rate_pct == pytest.approx(100 * closed.win_rate(), rel=1e-9)
    assert s.profit_factor == pytest.approx(closed.profit_factor(), rel=1e-9)
    assert s.expectancy == pytest.approx(closed.expectancy(), rel=1e-9)
    pnl = closed.pnl.values
    assert s.avg_win == pytest.approx(pnl[pnl > 0].mean(), rel=1e-9)
    assert s.avg_loss == pytest.approx(pnl[pnl < 0].mean(), rel=1e-9)


def _returns_by_open_time(symbol: str) -> tuple[pd.Series, pd.Series]:
    """Return the run's per-bar returns (the first from the start cash) and its closes', by open time."""
    result, candles = RESULTS[symbol], shipped_candles(symbol)
    equity = np.array([p.equity for p in result.equity_curve])
    index = pd.to_datetime(candles.open_time)
    first = equity[0] / result.metrics.start_equity - 1.0
    return pd.Series(np.r_[first, bar_returns(equity)], index=index), pd.Series(
        np.r_[0.0, bar_returns(candles.close)], index=index
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_alpha_and_beta_against_buy_and_hold_of_the_symbol_match_empyrical(symbol: str) -> None:
    import empyrical

    m = RESULTS[symbol].metrics
    ours, held = _returns_by_open_time(symbol)
    alpha, beta = empyrical.alpha_beta(ours.iloc[1:].to_numpy(), held.iloc[1:].to_numpy(), annualization=365)
    assert m.beta == pytest.approx(beta, rel=1e-9)
    assert m.alpha_pct == pytest.approx(100 * alpha, rel=1e-9)


YEARLY_RETURNS_PCT = {
    "BTCUSD": {"2014": 0.0, "2015": 74.97430543687402, "2016": 53.2061198913333, "2017": 838.9743107300228,
               "2018": -41.03978629279358, "2019": 78.95375790522843, "2020": 14.752742067657643},
    "ETHUSD": {"2017": 0.0, "2018": -22.75999593082273, "2019": 3.0206627575218414,
               "2020": 14.934017031919144},
}  # fmt: skip
MONTHS = {"BTCUSD": 63, "ETHUSD": 27}  # 2014-11 .. 2020-01, 2017-11 .. 2020-01


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_monthly_and_yearly_returns_match_empyricals_compounded_aggregates(symbol: str) -> None:
    import empyrical

    result = RESULTS[symbol]
    ours, _ = _returns_by_open_time(symbol)
    monthly, yearly = (
        empyrical.aggregate_returns(ours, "monthly"),
        empyrical.aggregate_returns(ours, "yearly"),
    )
    years = {y.period: y.return_pct for y in result.yearly_returns}
    assert years == pytest.approx(YEARLY_RETURNS_PCT[symbol], rel=REL)
    assert len(result.monthly_returns) == MONTHS[symbol]
    assert [m.period for m in result.monthly_returns] == [f"{y}-{mo:02d}" for y, mo in monthly.index]
    assert [m.return_pct for m in result.monthly_returns] == pytest.approx(100 * monthly.to_numpy(), rel=1e-9)
    assert [y.period for y in result.yearly_returns] == [str(y) for y in yearly.index]
    assert [y.return_pct for y in result.yearly_returns] == pytest.approx(100 * yearly.to_numpy(), rel=1e-9)
    growth = np.prod([1 + y.return_pct / 100 for y in result.yearly_returns if y.return_pct is not None])
    assert 100 * (growth - 1) == pytest.approx(result.metrics.total_return_pct, rel=1e-9)  # years compound
