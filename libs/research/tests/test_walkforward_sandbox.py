"""The platform's out-of-sample run (the strategy wrapped to trade from the test window) equals the
in-process one (signals dropped by `trading_from`), bar for bar, on both signal paths."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.engine.orchestrator import SignalPath
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_research.sweep import Curve, keep_curve
from backtest_research.walkforward import fold_windows, plan_folds, trading_from
from backtest_research.walkforward_sandbox import trading_from_config, wraps
from backtest_research.walkforward_stitch import oos_config
from backtest_testinfra import shipped_candles


@pytest.mark.parametrize("path", ["vectorized", "per_bar"])
def test_the_wrapped_strategy_trades_exactly_as_the_dropped_signals(path: SignalPath) -> None:
    candles = {"BTCUSD": shipped_candles("BTCUSD")}
    base = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"], interval="1d")
    window = fold_windows(candles["BTCUSD"].open_time, plan_folds(len(candles["BTCUSD"]), 500, 250), "1d")[1]
    config = oos_config(base, window, {"fast": 10, "slow": 30}, 900_000.0)
    local: list[Curve] = []
    platform: list[Curve] = []
    expected = run_backtest(
        config,
        candles,
        signal_path=path,
        signal_source=trading_from(window.test_start),
        on_equity=keep_curve(local),
    )
    wrapped = run_backtest(
        trading_from_config(config, window.test_start),
        candles,
        signal_path=path,
        on_equity=keep_curve(platform),
    )

    assert expected.metrics.trade_count == wrapped.metrics.trade_count > 0
    assert np.array_equal(local[0][0], platform[0][0]) and np.array_equal(local[0][1], platform[0][1])
    before = local[0][0] < window.test_start
    assert np.all(local[0][1][before] == 900_000.0)  # no position before the test window


UPLOADED = SourceStrategy(
    source=(
        "from backtest_core.strategy import BaseStrategy, Side, Signal\n"
        "from levels import crossed\n\n\n"
        "class AboveMean(BaseStrategy):\n"
        "    def get_required_lookback(self):\n"
        "        return 20\n\n"
        "    def decide(self, df, interval, **params):\n"
        "        return crossed(df.close)\n"
    ),
    files={
        "levels.py": (
            "from backtest_core.strategy import NO_SIGNAL, Side, Signal\n\n\n"
            "def crossed(close):\n"
            "    mean = close.mean()\n"
            "    if close[-2] <= mean < close[-1]:\n"
            "        return Signal(Side.BUY)\n"
            "    if close[-2] >= mean > close[-1]:\n"
            "        return Signal(Side.SELL)\n"
            "    return NO_SIGNAL\n"
        )
    },
    name="above_mean",
    version=3,
)


def test_an_uploaded_package_wrapped_trades_exactly_as_its_dropped_signals() -> None:
    candles = {"BTCUSD": shipped_candles("BTCUSD")}
    base = BacktestConfig(strategy=UPLOADED, symbols=["BTCUSD"], interval="1d")
    window = fold_windows(candles["BTCUSD"].open_time, plan_folds(len(candles["BTCUSD"]), 500, 250), "1d")[2]
    config = oos_config(base, window, {}, 1_000_000.0)
    local: list[Curve] = []
    platform: list[Curve] = []
    expected = run_backtest(
        config, candles, signal_source=trading_from(window.test_start), on_equity=keep_curve(local)
    )
    wrapped = trading_from_config(config, window.test_start)
    got = run_backtest(wrapped, candles, on_equity=keep_curve(platform))

    assert expected.metrics.trade_count == got.metrics.trade_count > 0
    assert np.array_equal(local[0][1], platform[0][1])
    assert isinstance(wrapped.strategy, SourceStrategy)
    assert (wrapped.strategy.name, wrapped.strategy.version, wrapped.strategy.files) == (
        "above_mean",
        3,
        UPLOADED.files,
    )


def test_a_source_too_large_to_carry_twice_is_refused_naming_why() -> None:
    config = BacktestConfig(strategy={"source": "x = 1\n" * 33_000}, symbols=["BTCUSD"])
    refused = wraps(config)
    assert refused is not None and refused.startswith("the strategy cannot be wrapped for its test runs")
