"""A parameter sweep on this machine: every trial a backtest of the base config with its params, run on
all cores, the candles sent to each worker process once; then the best trial and the overfitting
statistics of the search.

A trial whose params the strategy's own validation refuses (ConfigError, e.g. fast >= slow) is SKIPPED
and never run; one whose strategy raises is FAILURE with the reason; the sweep goes on.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from backtest_core.engine.market import shared_market
from backtest_core.engine.trials import TrialState, run_trial
from backtest_core.metrics.extra import probabilistic_sharpe
from backtest_core.metrics.performance import bar_returns
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import Metrics
from threadpoolctl import threadpool_limits

from backtest_research.overfitting import (
    PBO_SPLITS_DEFAULT,
    BlockSums,
    deflated_sharpe,
    overfitting_of_blocks,
    per_bar_sharpe,
)
from backtest_research.space import ParamSpace, SpaceError, Value

Method = Literal["grid", "random"]
CHUNK_BAR_CONFIGS = 5_000_000  # bars x configs per chunk: ~1 s of engine work, few round trips
Chunk = list[tuple[int, dict[str, Value]]]  # (trial id, params) of trials evaluated together
_WORKER_LIMITS: list[threadpool_limits] = []  # kept for the worker's life (a limit ends when restored)
SHARED_MEMORY = "/dev/shm"  # where the returns file lives when the machine has it
EQUITY_POINTS_KEPT = 2  # a trial keeps its returns as an array; no EquityPoint per bar


@dataclass(frozen=True, slots=True)
class Objective:
    """The metric a sweep ranks by, its direction, and the trades a trial needs to be eligible."""

    metric: str = "sharpe"
    maximize: bool = True
    min_trades: int = 0

    @classmethod
    def parse(cls, text: str, min_trades: int = 0) -> Objective:
        """Read `sharpe`, `sharpe:max` or `max_drawdown_pct:min`; the metric must be a Metrics field."""
        metric, _, direction = text.partition(":")
        if metric not in Metrics.model_fields:
            known = ", ".join(sorted(Metrics.model_fields))
            raise SpaceError(f"objective {metric!r} is not a metric; one of: {known}")
        if direction not in ("", "max", "min"):
            raise SpaceError(f"objective {text!r}: the direction is max or min, was {direction!r}")
        return cls(metric, direction != "min", min_trades)

    def score(self, metrics: Mapping[str, Any]) -> float | None:
        """The value to maximise (the metric, negated for min); None if undefined or too few trades."""
        value = metrics.get(self.metric)
        if value is None or metrics.get("trade_count", 0) < self.min_trades or not math.isfinite(value):
            return None
        return float(value) if self.maximize else -float(value)


@dataclass(slots=True)
class Trial:
    """One configuration of the sweep and its outcome; `returns` are its per-bar returns (SUCCESS)."""

    id: int
    params: dict[str, Value]
    state: TrialState
    metrics: dict[str, Any] | None = None
    reason: str | None = None
    returns: np.ndarray | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The trial as the output contract gives it (returns left out: see --returns)."""
        return {
            "id": self.id,
            "params": self.params,
            "state": self.state,
            "metrics": self.metrics,
            "reason": self.reason,
        }


Curve = tuple[np.ndarray, np.ndarray]  # (open times ns, equity) of every bar


def keep_curve(kept: list[Curve]) -> Callable[[np.ndarray, np.ndarray], None]:
    """An `on_equity` for run_backtest that appends the whole curve to `kept`."""

    def keep(times: np.ndarray, equity: np.ndarray) -> None:
        kept.append((times.copy(), equity.copy()))

    return keep


def run_trials(
    base: BacktestConfig, trials: Sequence[tuple[int, dict[str, Value]]], candles: Mapping[str, Candles]
) -> list[Trial]:
    """Evaluate a chunk of trials on candles loaded once: each a backtest of `base` with its params."""
    out = []
    market = shared_market(base, candles)  # params change the strategy, never the bars it reads
    for trial_id, params in trials:
        curve: list[Curve] = []
        run = run_trial(
            base,
            params,
            candles,
            equity_points_max=EQUITY_POINTS_KEPT,
            on_equity=keep_curve(curve),
            market=market,
        )
        if run.result is None:
            out.append(Trial(trial_id, params, run.state, reason=run.reason))
            continue
        metrics = run.result.metrics.model_dump()
        out.append(Trial(trial_id, params, "SUCCESS", metrics, returns=bar_returns(curve[0][1])))
    return out


_WORKER_CANDLES: dict[str, Candles] = {}


def _init_worker(candles: dict[str, Candles]) -> None:
    _WORKER_CANDLES.clear()
    _WORKER_CANDLES.update(candles)
    # One BLAS thread a worker: the workers are one a core, and OpenBLAS's idle threads spin on the others.
    _WORKER_LIMITS.append(threadpool_limits(limits=1, user_api="blas"))


@dataclass(frozen=True, slots=True)
class ReturnsFile:
    """A columns x bars float64 file (in memory where /dev/shm exists) that workers write returns into,
    so 4 MB a trial on 525,600 bars never travels through a pipe; a trial's returns are one row of it."""

    path: str
    rows: int
    columns: int

    def open(self, mode: Literal["r", "r+", "w+"]) -> np.memmap:
        return np.memmap(self.path, np.float64, mode, shape=(self.columns, self.rows))


def _run_chunk(
    base: BacktestConfig, chunk: Chunk, returns: ReturnsFile | None, first_column: int
) -> list[Trial]:
    trials = run_trials(base, chunk, _WORKER_CANDLES)
    if returns is not None:
        matrix = returns.open("r+")
        for column, trial in enumerate(trials, first_column):
            if trial.returns is not None and len(trial.returns) == returns.rows:
                matrix[column] = trial.returns
                trial.returns = None  # in the file, column `column`
        matrix.flush()
    return trials


def return_rows(base: BacktestConfig, candles: Mapping[str, Candles]) -> int:
    """How many per-bar returns a trial of `base` has: the bars of the union grid in its range, less one."""
    start = None if base.start is None else int(pd.Timestamp(base.start).as_unit("ns").value)
    end = None if base.end is None else int(pd.Timestamp(base.end).as_unit("ns").value)
    times = [candles[s].between(start, end).open_time for s in base.symbols if s in candles]
    if not times:
        return 0
    ordered = np.sort(np.concatenate(times))  # each symbol's times are increasing; the union counts once
    bars = int(np.count_nonzero(np.diff(ordered))) + 1 if len(ordered) else 0
    return max(0, bars - 1)


def plan_trials(space: ParamSpace, method: Method, trials: int | None, seed: int) -> list[dict[str, Value]]:
    """The params of every trial: the whole grid, or `trials` seeded random draws."""
    if method == "grid":
        return list(space.grid())
    if not trials or trials < 1:
        raise SpaceError("random search needs --trials N (N >= 1)")
    return space.sample(random.Random(seed), trials)


def chunk_size(trials: int, bars: int | None, bar_configs: int, max_trials: int, min_chunks: int = 1) -> int:
    """The trials of one chunk: `trials` split evenly into the fewest chunks of at most `bar_configs`
    bars x configs of engine work (`bars` None: unknown, by trials alone) and `max_trials` trials, and
    `min_chunks` chunks at least when there are enough trials (one a worker). The local sweep and the
    platform's sweeper both chunk by it."""
    trials = max(trials, 1)
    by_cost = math.ceil(trials * bars / max(bar_configs, 1)) if bars is not None else 1
    count = min(max(by_cost, math.ceil(trials / max(max_trials, 1)), min_chunks, 1), trials)
    return math.ceil(trials / count)


def chunks(planned: list[dict[str, Value]], bars: int, workers: int) -> list[Chunk]:
    """Group trials by estimated cost (bars x configs), one chunk per worker at least if there are enough."""
    size = chunk_size(len(planned), bars, CHUNK_BAR_CONFIGS, len(planned) or 1, workers)
    numbered = list(enumerate(planned))
    return [numbered[i : i + size] for i in range(0, len(numbered), size)]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Every trial in id order, the best eligible one, and the overfitting statistics."""

    trials: list[Trial]
    best: Trial | None
    overfitting: dict[str, Any]
    objective: Objective

    def counts(self) -> dict[str, int]:
        """Trials by state, and in all."""
        states = [t.state for t in self.trials]
        return {
            "total": len(states),
            "done": states.count("SUCCESS"),
            "failed": states.count("FAILURE"),
            "skipped": states.count("SKIPPED"),
        }

    def as_json(self) -> dict[str, Any]:
        """The output contract shared by `backtest sweep --json` and the platform's sweep result."""
        return {
            "trials": [t.as_json() for t in self.trials],
            "best": self.best.as_json() if self.best else None,
            "overfitting": self.overfitting,
            "objective": {
                "metric": self.objective.metric,
                "direction": "max" if self.objective.maximize else "min",
                "min_trades": self.objective.min_trades,
            },
            "counts": self.counts(),
        }


def overfitting_of(
    trials: list[Trial], best: Trial | None, splits: int = PBO_SPLITS_DEFAULT
) -> dict[str, Any]:
    """PBO of the successful trials, PSR and deflated Sharpe of the best, and N (successful trials)."""
    returns = [t.returns for t in trials if t.state == "SUCCESS" and t.returns is not None]
    sharpes = [s for s in map(per_bar_sharpe, returns) if s is not None]
    pbo = None
    if len(returns) >= 2 and len(returns[0]) >= 2 * splits:
        bars = len(returns[0])  # every trial's returns span the same bars (the sweeper drops others)
        blocks = [BlockSums.of(r, splits) for r in returns if len(r) == bars]
        found = overfitting_of_blocks(blocks, bars)
        pbo = found.pbo if found is not None else None
    best_returns = best.returns if best is not None else None
    return {
        "pbo": pbo,
        "deflated_sharpe": deflated_sharpe(best_returns, sharpes) if best_returns is not None else None,
        "psr": probabilistic_sharpe(best_returns) if best_returns is not None else None,
        "trials": len(returns),
        "pbo_splits": splits,
    }


def history_deflated_sharpe(best: Trial | None, history_sharpes: list[float]) -> dict[str, Any]:
    """The deflated Sharpe of the best trial with N = every backtest in `history_sharpes` (per bar: this
    sweep's trials and the user's other backtests of the strategy on the same symbols and interval)."""
    returns = best.returns if best is not None else None
    return {
        "deflated_sharpe_history": deflated_sharpe(returns, history_sharpes) if returns is not None else None,
        "history_trials": len(history_sharpes),
    }


def pick_best(trials: list[Trial], objective: Objective) -> Trial | None:
    """The eligible SUCCESS trial with the highest score (the lowest id among equals)."""
    scored = [(s, -t.id, t) for t in trials if t.metrics and (s := objective.score(t.metrics)) is not None]
    return max(scored, key=lambda x: (x[0], x[1]))[2] if scored else None


Evaluate = Callable[[list[Chunk]], list[Trial]]


@contextmanager
def trial_evaluator(
    base: BacktestConfig,
    candles: Mapping[str, Candles],
    workers: int,
    on_trials: Callable[[int], None] | None = None,
) -> Iterator[Evaluate]:
    """Yield `evaluate(chunks) -> trials`: in this process for one worker, else over a process pool
    that receives the candles once per worker and is kept for every call (a TPE search calls it often)."""
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(dict(candles),))

    def evaluate(groups: list[Chunk]) -> list[Trial]:
        done: list[Trial] = []
        if pool is None or (len(groups) == 1 and len(groups[0]) == 1):
            for group in groups:
                done += run_trials(base, group, candles)
                if on_trials:
                    on_trials(len(group))
            return done
        columns = list(itertools.accumulate((len(g) for g in groups), initial=0))
        with tempfile.TemporaryDirectory(dir=SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) else None) as tmp:
            returns = ReturnsFile(os.path.join(tmp, "returns"), return_rows(base, candles), columns[-1])
            returns.open("w+").flush()
            futures = {
                pool.submit(_run_chunk, base, group, returns, first): (len(group), first)
                for group, first in zip(groups, columns, strict=False)
            }
            for future in as_completed(futures):
                size, _ = futures[future]
                done += future.result()
                if on_trials:
                    on_trials(size)
            matrix = returns.open("r")  # stays mapped (in memory) while a trial's row of it is kept
            for future, (_, first) in futures.items():
                for column, trial in enumerate(future.result(), first):
                    if trial.state == "SUCCESS" and trial.returns is None:
                        trial.returns = matrix[column]
        return done

    try:
        yield evaluate
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def run_sweep(
    base: BacktestConfig,
    candles: Mapping[str, Candles],
    planned: list[dict[str, Value]],
    objective: Objective,
    *,
    workers: int | None = None,
    pbo_splits: int = PBO_SPLITS_DEFAULT,
    on_trials: Callable[[int], None] | None = None,
) -> SweepResult:
    """Run every planned trial over `workers` processes (default: every core) and rank them."""
    workers = workers or os.cpu_count() or 1
    groups = chunks(planned, max(len(c) for c in candles.values()), workers)
    with trial_evaluator(base, candles, workers if len(groups) > 1 else 1, on_trials) as evaluate:
        done = evaluate(groups)
    return ranked(done, objective, pbo_splits)


def ranked(done: list[Trial], objective: Objective, pbo_splits: int = PBO_SPLITS_DEFAULT) -> SweepResult:
    """The sweep's result from its finished trials: in id order, the best, the overfitting statistics."""
    done = sorted(done, key=lambda t: t.id)
    best = pick_best(done, objective)
    return SweepResult(done, best, overfitting_of(done, best, pbo_splits), objective)
