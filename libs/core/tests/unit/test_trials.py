"""engine.trials: what a trial's run makes of each kind of error, the one rule of the local sweep and of a
sandbox's chunk."""

from __future__ import annotations

import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.engine.trials import failure_of, run_trial
from backtest_core.errors import BacktestError, DataError, StrategyLoadError
from backtest_core.model.config import BacktestConfig

from .test_strategies import walk

BASE = BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT"], interval="1h")
CANDLES = {"BTCUSDT": walk(400, 3)}
RAISES = """
from backtest_core.strategy import BaseStrategy

class Raises(BaseStrategy):
    def decide(self, df, interval, **params):
        raise KeyError("no such column")
"""


class Fatal(BacktestError):
    ends_run = True


def test_a_trial_runs_its_params_over_the_base_config() -> None:
    run = run_trial(BASE, {"fast": 4, "slow": 12}, CANDLES)

    expected = run_backtest(BASE.with_params({"fast": 4, "slow": 12}), CANDLES)
    assert run.state == "SUCCESS" and run.reason is None
    assert run.result == expected and expected.metrics.trade_count > 3


def test_params_the_strategy_refuses_or_the_config_cannot_take_are_skipped_with_the_reason() -> None:
    refused = run_trial(BASE, {"fast": 30, "slow": 10}, CANDLES)
    unnamed = run_trial(BASE, {"9fast": 3}, CANDLES)

    assert (refused.state, refused.result) == ("SKIPPED", None)
    assert refused.reason is not None and "fast" in refused.reason
    assert unnamed.state == "SKIPPED" and unnamed.reason is not None and "9fast" in unnamed.reason


def test_a_strategy_that_raises_is_a_failure_named_by_its_reason() -> None:
    base = BacktestConfig(strategy={"source": RAISES}, symbols=["BTCUSDT"], interval="1h")  # type: ignore[arg-type]

    run = run_trial(base, {}, CANDLES)

    assert run.state == "FAILURE" and run.reason is not None
    assert run.reason.startswith("strategy_error: ") and "no such column" in run.reason


def test_an_error_that_ends_the_run_is_raised_and_each_error_has_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fatal(*args: object, **kwargs: object) -> None:
        raise Fatal("the strategy's process was killed")

    monkeypatch.setattr("backtest_core.engine.trials.run_backtest", fatal)
    with pytest.raises(Fatal):
        run_trial(BASE, {}, CANDLES)
    assert failure_of(DataError("no candles"))[0].value == "no_data"
    assert failure_of(StrategyLoadError("no class"))[0].value == "invalid_strategy"
    assert failure_of(BacktestError("ended early"))[0].value == "strategy_error"
