"""Walk-forward: folds by hand, lengths as bars or durations, no position before a test window, equity
carried from fold to fold, and the efficiency from its two CAGRs."""

from __future__ import annotations

import pytest
from backtest_core.model.config import BacktestConfig
from backtest_research.space import ParamSpace, SpaceError
from backtest_research.sweep import Objective
from backtest_research.walkforward import Fold, parse_length, plan_folds, run_walkforward
from backtest_testinfra import shipped_candles


def test_rolling_anchored_and_gapped_folds_by_hand() -> None:
    assert plan_folds(100, 40, 20) == [Fold(0, 40, 40, 60), Fold(20, 60, 60, 80), Fold(40, 80, 80, 100)]
    assert plan_folds(100, 40, 20, anchored=True) == [
        Fold(0, 40, 40, 60),
        Fold(0, 60, 60, 80),
        Fold(0, 80, 80, 100),
    ]
    assert plan_folds(100, 40, 20, gap=5) == [Fold(0, 40, 45, 65), Fold(20, 60, 65, 85)]
    assert plan_folds(100, 40, 20, step=30) == [Fold(0, 40, 40, 60), Fold(30, 70, 70, 90)]
    with pytest.raises(
        SpaceError, match="no fold fits: train 90 \\+ gap 0 \\+ test 20 bars > the data's 100"
    ):
        plan_folds(100, 90, 20)


def test_lengths_are_bars_or_durations_of_the_interval() -> None:
    assert parse_length("500", "1d", "--train") == 500
    assert parse_length("90d", "1d", "--train") == 90
    assert parse_length("2w", "1h", "--test") == 336
    assert parse_length("0", "1d", "--gap") == 0
    with pytest.raises(
        SpaceError, match="option --train: a count of bars or a duration like 90d, was '3 months'"
    ):
        parse_length("3 months", "1d", "--train")


def test_each_fold_trades_only_in_its_test_window_and_carries_the_equity() -> None:
    candles = {"BTCUSD": shipped_candles("BTCUSD")}
    base = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"], interval="1d", cash=1_000_000.0,
                          fees={"maker": 0.001, "taker": 0.001})  # fmt: skip
    planned = list(ParamSpace.parse(["fast=5,10,20", "slow=30,60"]).grid())
    folds = plan_folds(len(candles["BTCUSD"]), 500, 250)
    result = run_walkforward(base, candles, planned, Objective.parse("sharpe"), folds, workers=1)
    assert len(result.folds) == len(folds) == 5
    cash = 1_000_000.0
    for fold in result.folds:
        assert fold.params is not None and fold.out_of_sample is not None and fold.in_sample is not None
        assert fold.out_of_sample["start_equity"] == cash  # carried from the previous fold
        assert fold.out_of_sample["bars"] == 250
        cash = fold.out_of_sample["final_equity"]
    assert result.equity[-1] == cash
    assert len(result.equity) == 5 * 250
    assert result.oos_metrics["total_return_pct"] == pytest.approx((cash / 1_000_000.0 - 1) * 100)
    in_sample = [f.in_sample["cagr_pct"] for f in result.folds if f.in_sample]
    expected = result.oos_metrics["cagr_pct"] / (sum(in_sample) / len(in_sample))
    assert result.efficiency == pytest.approx(expected)
    body = result.as_json()
    assert body["folds"][0]["train"] == {"start": "2014-11-28T00:00:00Z", "end": "2016-04-11T00:00:00Z"}
    assert body["folds"][0]["test"]["start"] == "2016-04-11T00:00:00Z"


def test_no_position_opens_before_the_test_window() -> None:
    from backtest_core.engine.run import run_backtest
    from backtest_research.walkforward import trading_from

    candles = {"BTCUSD": shipped_candles("BTCUSD")}
    start_ns = int(candles["BTCUSD"].open_time[1000])
    config = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"], interval="1d")
    masked = run_backtest(config, candles, signal_source=trading_from(start_ns))
    plain = run_backtest(config, candles)
    assert masked.trades and min(t.entry_time for t in masked.trades).timestamp() * 1e9 >= start_ns
    assert len(masked.trades) < len(plain.trades)
    # once flat after the window opens, both take the same trades: the signals are the same
    later = [t.entry_time for t in plain.trades if t.entry_time.timestamp() * 1e9 >= start_ns]
    assert [t.entry_time for t in masked.trades][-5:] == later[-5:]
