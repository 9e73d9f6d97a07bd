"""Pure decisions of a walk-forward: its folds' sweeps, what a sweep's or a test run's end makes of a
fold, which test run goes next and when the walk-forward ends. No I/O; the service stores what these
return, then publishes the commands.

The folds' sweeps run at once (in parallel over the runners); the test runs go one after the other in
fold order, because each starts with the equity the previous fold ended with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from backtest_core.contracts import (
    TERMINAL_SWEEP_STATES,
    BacktestCancelled,
    BacktestFailed,
    BacktestSucceeded,
    SubmitBacktest,
    SweepCounts,
    SweepState,
)
from backtest_core.model.results import BacktestResult, backtest_result
from backtest_research.sweep_records import SweepRecord
from backtest_research.walkforward_records import (
    ENDED_FOLDS,
    FoldRecord,
    FoldState,
    WalkForwardRecord,
)
from backtest_research.walkforward_sandbox import trading_from_config
from backtest_research.walkforward_stitch import cut_to_test, next_cash, oos_config, stitch, train_config

TestEnd = BacktestSucceeded | BacktestFailed | BacktestCancelled


def fold_sweeps(record: WalkForwardRecord, now: datetime) -> list[SweepRecord]:
    """Every fold's sweep: the walk-forward's search over the fold's train window, PENDING."""
    size = record.search.size()
    return [
        SweepRecord(
            sweep_id=fold.sweep_id,
            user_id=record.user_id,
            state=SweepState.PENDING,
            config=train_config(record.config, fold.window()),
            search=record.search,
            walkforward_id=record.walkforward_id,
            counts=SweepCounts(total=size),
            created_at=now,
            updated_at=now,
        )
        for fold in record.folds
    ]


def trained_fold(fold: FoldRecord, sweep: SweepRecord | None) -> FoldRecord:
    """The fold once its sweep has ended: TRAINED with the best trial's params and metrics, NO_TRIAL
    when no trial was eligible, CANCELLED with the sweep; unchanged while the sweep runs."""
    if fold.state is not FoldState.TRAINING or sweep is None or sweep.state not in TERMINAL_SWEEP_STATES:
        return fold
    if sweep.state is SweepState.CANCELLED:
        return fold.model_copy(update={"state": FoldState.CANCELLED})
    best = sweep.best
    if best is None or best.get("metrics") is None:
        return fold.model_copy(update={"state": FoldState.NO_TRIAL})
    return fold.model_copy(
        update={"state": FoldState.TRAINED, "params": best["params"], "in_sample": best["metrics"]}
    )


def test_command(record: WalkForwardRecord, fold: FoldRecord) -> SubmitBacktest:
    """The fold's test run: its best params from the train window's start, trading from the test
    window's, starting with the fold's `cash`; its message id is the task's, so a resend is one task."""
    assert fold.params is not None and fold.cash is not None  # a TESTING fold has both
    config = oos_config(record.config, fold.window(), fold.params, fold.cash)
    return SubmitBacktest(
        message_id=f"{fold.test_task_id}-submit",
        task_id=fold.test_task_id,
        user_id=record.user_id,
        config=trading_from_config(config, fold.test_start),
    )


def _points(result: BacktestResult) -> tuple[np.ndarray, np.ndarray]:
    times = [
        int(p.time.timestamp()) * 1_000_000_000 + p.time.microsecond * 1_000 for p in result.equity_curve
    ]
    equity = [p.equity for p in result.equity_curve]
    return np.array(times, dtype=np.int64), np.array(equity, dtype=np.float64)


def tested_fold(fold: FoldRecord, event: TestEnd, interval: str) -> FoldRecord:
    """The fold as its test run's end leaves it: DONE with the test window's equity and metrics (the
    curve must hold every bar of the window), FAILED with the reason, or CANCELLED."""
    if isinstance(event, BacktestCancelled):
        return fold.model_copy(update={"state": FoldState.CANCELLED})
    if isinstance(event, BacktestFailed):
        reason = f"the test run failed: {event.failure.reason.value}: {event.failure.message}"
        return fold.model_copy(update={"state": FoldState.FAILED, "failure": reason})
    assert fold.cash is not None  # a TESTING fold has it
    result = backtest_result(event.result)
    times, equity = _points(result)
    inside = int(np.count_nonzero(times >= fold.test_start))
    if inside != fold.test_bars:
        reason = (
            f"the test run's equity curve has {inside} points in the test window of {fold.test_bars} bars "
            "(downsampled): shorten train + gap + test to the runner's RUNNER_EQUITY_POINTS_MAX"
        )
        return fold.model_copy(update={"state": FoldState.FAILED, "failure": reason})
    test = cut_to_test(fold.cash, times, equity, fold.window(), interval, result.metrics.trade_count)
    return fold.model_copy(
        update={
            "state": FoldState.DONE,
            "test_times": [int(t) for t in test.times],
            "test_equity": [float(v) for v in test.equity],
            "out_of_sample": test.metrics,
            "trades": test.trades,
        }
    )


@dataclass
class WalkForwardPlan:
    """What the service does next: the record to store, then the test run to send (if any)."""

    record: WalkForwardRecord
    submit: list[SubmitBacktest] = field(default_factory=list)
    finished: bool = False


def advance(
    record: WalkForwardRecord, sweeps: Mapping[str, SweepRecord | None], now: datetime
) -> WalkForwardPlan:
    """Fold the ended sweeps in, start the next test run in fold order, and end the walk-forward when
    no fold is open: SUCCESS with the stitched result, FAILURE when a fold failed or was cancelled
    on its own, or CANCELLED. After a failure or a cancel no test run starts (the chain of equity is
    broken): the folds waiting for one end CANCELLED."""
    folds = [trained_fold(fold, sweeps.get(fold.sweep_id)) for fold in record.folds]
    broken = record.state is not SweepState.RUNNING or any(f.state in _BROKEN for f in folds)
    if broken:
        folds = [
            f.model_copy(update={"state": FoldState.CANCELLED}) if f.state is FoldState.TRAINED else f
            for f in folds
        ]
    else:
        for number, fold in enumerate(folds):
            if fold.state in (FoldState.DONE, FoldState.NO_TRIAL):
                continue
            if fold.state is FoldState.TRAINED:
                cash = next_cash(record.config, [f.outcome() for f in folds[:number]])
                folds[number] = fold.model_copy(update={"state": FoldState.TESTING, "cash": cash})
            break  # the next test run waits for this fold
    updated = record.model_copy(update={"folds": folds, "updated_at": now})
    submit = [
        test_command(updated, f)
        for f, was in zip(folds, record.folds, strict=True)
        if f.state is FoldState.TESTING and was.state is not FoldState.TESTING
    ]
    if not all(f.state in ENDED_FOLDS for f in folds):
        return WalkForwardPlan(updated, submit)
    return WalkForwardPlan(_ended(updated, now), submit, finished=True)


_BROKEN = (FoldState.FAILED, FoldState.CANCELLED)


def _ended(record: WalkForwardRecord, now: datetime) -> WalkForwardRecord:
    changes: dict[str, Any] = {"finished_at": now, "updated_at": now}
    broken = [f for f in record.folds if f.state in _BROKEN]
    if record.state is SweepState.CANCELLED:
        pass
    elif broken:
        why = broken[0].failure or "its sweep or test run was cancelled"
        changes |= {"state": SweepState.FAILURE, "failure": f"fold {broken[0].number}: {why}"}
    else:
        result = stitch(record.config, [f.outcome() for f in record.folds]).as_json()
        changes |= {"state": SweepState.SUCCESS, "result": result}
    return record.model_copy(update=changes)
