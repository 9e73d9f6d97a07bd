"""Sweeps on the shipped BTCUSD daily bars: each trial is exactly the single backtest of its config,
skipped and failed trials are counted and the sweep goes on, the best trial follows the objective."""

from __future__ import annotations

import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_research.space import ParamSpace, SpaceError
from backtest_research.sweep import Objective, chunks, plan_trials, run_sweep
from backtest_testinfra import shipped_candles

BASE = BacktestConfig(
    strategy="sma_cross",
    symbols=["BTCUSD"],
    interval="1d",
    cash=1_000_000.0,
    fees={"maker": 0.001, "taker": 0.001},
    fill="next_open",
)
CANDLES = {"BTCUSD": shipped_candles("BTCUSD")}

RAISES_ON_FAST_7 = """
from typing import Any, ClassVar

from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Signal, Window


class Fragile(BaseStrategy):
    name = "fragile"
    params: ClassVar = {"fast": Param(5, "a number; 7 raises", minimum=1)}

    def get_required_lookback(self) -> int:
        return 1

    def decide(self, df: Window, interval: str, **p: Any) -> Signal:
        if p["fast"] == 7:
            raise RuntimeError("fast=7 is cursed")
        return NO_SIGNAL
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_every_trial_equals_the_single_backtest_of_its_config(workers: int) -> None:
    planned = plan_trials(ParamSpace.parse(["fast=5:20:5", "slow=20,40"]), "grid", None, 0)
    result = run_sweep(BASE, CANDLES, planned, Objective.parse("sharpe"), workers=workers)
    assert [t.id for t in result.trials] == list(range(8))
    assert result.counts() == {"total": 8, "done": 7, "failed": 0, "skipped": 1}  # fast=20, slow=20
    for trial in result.trials:
        if trial.state == "SKIPPED":
            assert trial.params == {"fast": 20, "slow": 20}
            assert trial.reason == "fast must be < slow, was fast=20, slow=20"
            continue
        single = run_backtest(BASE.model_copy(update={"params": trial.params}), CANDLES)
        assert trial.metrics is not None
        assert trial.metrics["final_equity"] == pytest.approx(single.metrics.final_equity, rel=1e-9)
        assert trial.metrics == single.metrics.model_dump()


def test_the_best_trial_has_the_highest_objective_among_those_with_enough_trades() -> None:
    planned = plan_trials(ParamSpace.parse(["fast=5,10", "slow=30,60,90"]), "grid", None, 0)
    result = run_sweep(BASE, CANDLES, planned, Objective.parse("sharpe:max", min_trades=10), workers=1)
    eligible = [t for t in result.trials if t.metrics and t.metrics["trade_count"] >= 10]
    assert result.best is not None and result.best.metrics is not None
    assert result.best.metrics["sharpe"] == max(t.metrics["sharpe"] for t in eligible if t.metrics)
    worst = run_sweep(BASE, CANDLES, planned, Objective.parse("sharpe:min"), workers=1).best
    assert worst is not None and worst.metrics is not None
    assert worst.metrics["sharpe"] == min(t.metrics["sharpe"] for t in result.trials if t.metrics)
    stats = result.overfitting
    assert stats["trials"] == 6 and 0.0 <= stats["pbo"] <= 1.0
    assert 0.0 < stats["deflated_sharpe"] < stats["psr"] < 1.0


def test_a_strategy_that_raises_on_some_params_fails_those_trials_and_the_sweep_goes_on() -> None:
    base = BASE.model_copy(update={"strategy": SourceStrategy(source=RAISES_ON_FAST_7)})
    planned = [{"fast": 6}, {"fast": 7}, {"fast": 8}]
    result = run_sweep(base, CANDLES, planned, Objective.parse("final_equity"), workers=1)
    assert [t.state for t in result.trials] == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert "fast=7 is cursed" in (result.trials[1].reason or "")


def test_random_search_is_reproducible_by_seed() -> None:
    space = ParamSpace.parse(["fast=int:3:15", "slow=int:20:60"])
    assert plan_trials(space, "random", 12, 42) == plan_trials(space, "random", 12, 42)
    assert plan_trials(space, "random", 12, 42) != plan_trials(space, "random", 12, 43)
    with pytest.raises(SpaceError, match="--trials"):
        plan_trials(space, "random", None, 0)


def test_chunks_bound_bars_times_configs_and_feed_every_worker() -> None:
    planned = [{"fast": i} for i in range(90)]
    assert [len(c) for c in chunks(planned, 525_600, 2)] == [9] * 10  # 5,000,000 // 525,600 = 9
    assert [len(c) for c in chunks(planned, 1_000, 2)] == [45, 45]
    assert [i for c in chunks(planned, 1_000, 4) for i, _ in c] == list(range(90))


def test_an_unknown_objective_names_the_known_metrics() -> None:
    with pytest.raises(SpaceError, match=r"objective 'sharp' is not a metric; one of: .*sharpe"):
        Objective.parse("sharp")


def test_a_seeded_tpe_search_is_reproducible_and_its_trials_are_single_backtests() -> None:
    from backtest_research.tpe import run_tpe, tpe_study

    space = ParamSpace.parse(["fast=int:3:30", "slow=int:20:120"])
    objective = Objective.parse("sharpe")
    first = run_tpe(BASE, CANDLES, space, objective, 12, 5, workers=2)
    again = run_tpe(BASE, CANDLES, space, objective, 12, 5, workers=2)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]
    assert len(first.trials) == 12 and first.best is not None
    done = next(t for t in first.trials if t.state == "SUCCESS")
    single = run_backtest(BASE.model_copy(update={"params": done.params}), CANDLES)
    assert done.metrics is not None and done.metrics["final_equity"] == single.metrics.final_equity
    rebuilt = tpe_study(space, 5, first.trials, objective)  # after a restart: the study from its trials
    assert len(rebuilt.trials) == 12
    assert rebuilt.best_value == objective.score(first.best.metrics or {})


def test_returns_written_by_worker_processes_equal_those_of_one_process() -> None:
    import numpy as np

    planned = plan_trials(ParamSpace.parse(["fast=5,10,15", "slow=30,60"]), "grid", None, 0)
    alone = run_sweep(BASE, CANDLES, planned, Objective.parse("sharpe"), workers=1)
    shared = run_sweep(BASE, CANDLES, planned, Objective.parse("sharpe"), workers=2)
    for one, two in zip(alone.trials, shared.trials, strict=True):
        assert one.returns is not None and two.returns is not None
        assert len(one.returns) == len(CANDLES["BTCUSD"]) - 1
        np.testing.assert_array_equal(one.returns, two.returns)
    assert alone.overfitting == shared.overfitting
