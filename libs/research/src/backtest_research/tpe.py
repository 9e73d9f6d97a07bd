"""Bayesian search with Optuna's TPE sampler (seeded): batches of one trial per worker are asked,
evaluated like any sweep's trials, and told back, so the next batch learns from every finished one.

The study lives only in memory; `tpe_study(space, objective, seed, trials)` rebuilds one from finished
trials (what a sweep owner does after a restart). SKIPPED and FAILURE trials are told as failed, so the
sampler avoids their region; a trial without a score (too few trades, undefined metric) likewise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig

from backtest_research.overfitting import PBO_SPLITS_DEFAULT
from backtest_research.space import Dimension, ParamSpace, Value
from backtest_research.sweep import Objective, SweepResult, Trial, ranked, trial_evaluator


def _distribution(dimension: Dimension) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dimension.values is not None:
        return CategoricalDistribution(dimension.values)
    if dimension.distribution == "int":
        return IntDistribution(int(dimension.low), int(dimension.high))
    return FloatDistribution(dimension.low, dimension.high, log=dimension.distribution == "log")


def tpe_study(space: ParamSpace, seed: int, finished: list[Trial], objective: Objective) -> Any:
    """A maximising TPE study (seeded) holding `finished` trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    distributions = {d.name: _distribution(d) for d in space.dimensions}
    for trial in finished:
        score = objective.score(trial.metrics) if trial.metrics else None
        study.add_trial(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=distributions,
                value=score,
                state=optuna.trial.TrialState.COMPLETE if score is not None else optuna.trial.TrialState.FAIL,
            )
        )
    return study


def run_tpe(
    base: BacktestConfig,
    candles: Mapping[str, Candles],
    space: ParamSpace,
    objective: Objective,
    trials: int,
    seed: int,
    *,
    workers: int | None = None,
    pbo_splits: int = PBO_SPLITS_DEFAULT,
    on_trials: Callable[[int], None] | None = None,
) -> SweepResult:
    """Run `trials` TPE-suggested trials, `workers` at a time, and rank them as any sweep."""
    import optuna

    workers = workers or os.cpu_count() or 1
    study = tpe_study(space, seed, [], objective)
    distributions = {d.name: _distribution(d) for d in space.dimensions}
    done: list[Trial] = []
    with trial_evaluator(base, candles, workers, on_trials) as evaluate:
        while len(done) < trials:
            asked = [study.ask(distributions) for _ in range(min(workers, trials - len(done)))]
            batch: list[tuple[int, dict[str, Value]]] = [
                (len(done) + i, dict(t.params)) for i, t in enumerate(asked)
            ]
            finished = {t.id: t for t in evaluate([[item] for item in batch])}
            for (trial_id, _), handle in zip(batch, asked, strict=True):
                trial = finished[trial_id]
                score = objective.score(trial.metrics) if trial.metrics else None
                if score is None:
                    study.tell(handle, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(handle, score)
                done.append(trial)
    return ranked(done, objective, pbo_splits)


def ask_tpe(
    space: ParamSpace, seed: int, ended: list[Trial], objective: Objective, first_id: int, count: int
) -> list[dict[str, Value]]:
    """The params of the next `count` trials (ids from `first_id`) of a TPE search that has `ended`.

    The study is rebuilt from the ended trials every time (a sweep owner keeps no study in memory and
    loses nothing on a restart); the sampler's seed moves with `first_id`, so trials asked while others
    are still out differ from them.
    """
    study = tpe_study(space, seed + first_id, ended, objective)
    distributions = {d.name: _distribution(d) for d in space.dimensions}
    return [dict(study.ask(distributions).params) for _ in range(count)]
