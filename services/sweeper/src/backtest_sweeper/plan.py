"""The sweeper's decisions, pure: which trials a sweep has, what a trial's end makes of it, what a sweep's
counts and summary are. No I/O; the service stores and publishes what these return.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
from backtest_core.config import BacktestConfig, BuiltinStrategy
from backtest_core.contracts import (
    BacktestCancelled,
    BacktestFailed,
    BacktestSucceeded,
    CancelBacktest,
    FailureReason,
    SubmitBacktest,
    SweepCounts,
)
from backtest_core.errors import BacktestError, ConfigError
from backtest_core.loader import load_strategy
from backtest_core.metrics import bar_returns
from backtest_research.space import Value
from backtest_research.sweep import Objective, SweepResult, Trial, TrialState, ranked
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus, trial_task_id

TrialEnd = BacktestSucceeded | BacktestFailed | BacktestCancelled
TRIAL_STATE: dict[TrialStatus, TrialState] = {  # the research library's trial states for the ended statuses
    TrialStatus.SUCCESS: "SUCCESS",
    TrialStatus.FAILURE: "FAILURE",
    TrialStatus.SKIPPED: "SKIPPED",
}


def trial_config(base: BacktestConfig, params: Mapping[str, Value]) -> BacktestConfig:
    """The backtest a trial runs: the base config with the trial's params over the base's."""
    return BacktestConfig.model_validate({**base.model_dump(), "params": {**base.params, **params}})


def refused_params(base: BacktestConfig, params: Mapping[str, Value]) -> str | None:
    """Why a built-in strategy refuses these params (its own validation, e.g. fast >= slow), else None.

    Only a built-in is checked here (engine code); an uploaded strategy's validation runs in the sandbox
    and its refusal (FailureReason.INVALID_CONFIG) makes the trial SKIPPED there.
    """
    if not isinstance(base.strategy, str | BuiltinStrategy):
        return None
    try:
        load_strategy(base.strategy, {**base.params, **params})
    except ConfigError as error:
        return str(error)
    except BacktestError:
        return None  # not a params problem: the sandbox reports it as the trial's failure
    return None


def new_trial(record: SweepRecord, trial: int, params: dict[str, Value], now: datetime) -> TrialRecord:
    """A trial of the sweep, PLANNED, or SKIPPED at once when a built-in refuses its params."""
    refused = refused_params(record.config, params)
    return TrialRecord(
        sweep_id=record.sweep_id,
        user_id=record.user_id,
        id=trial,
        task_id=trial_task_id(record.sweep_id, trial),
        params=params,
        state=TrialStatus.PLANNED if refused is None else TrialStatus.SKIPPED,
        reason=refused,
        updated_at=now,
    )


def initial_trials(record: SweepRecord, now: datetime) -> list[TrialRecord]:
    """Every trial of a grid or random sweep, in id order (a TPE sweep asks its trials as it goes)."""
    return [new_trial(record, i, params, now) for i, params in enumerate(record.search.planned())]


def submit_command(record: SweepRecord, trial: TrialRecord) -> SubmitBacktest:
    """The command that runs a trial; its message id is the trial's, so a resend is stored once."""
    return SubmitBacktest(
        message_id=f"{trial.task_id}-submit",
        task_id=trial.task_id,
        user_id=record.user_id,
        config=trial_config(record.config, trial.params),
    )


def cancel_command(trial: TrialRecord) -> CancelBacktest:
    """The command that cancels a trial's task."""
    return CancelBacktest(message_id=f"{trial.task_id}-cancel", task_id=trial.task_id, user_id=trial.user_id)


def curve_returns(event: BacktestSucceeded) -> list[float]:
    """The returns between the points of the result's equity curve (every bar up to 5,000 bars)."""
    equity = np.array([point.equity for point in event.result.equity_curve], dtype=np.float64)
    returns = np.nan_to_num(bar_returns(equity), nan=0.0, posinf=0.0, neginf=0.0)
    return [float(r) for r in returns]


def ended_trial(trial: TrialRecord, event: TrialEnd, objective: Objective, now: datetime) -> TrialRecord:
    """The trial as its task's end leaves it: SUCCESS with metrics, SKIPPED when the strategy's validation
    refused the params, FAILURE with the reason, or CANCELLED."""
    changes: dict[str, Any] = {"updated_at": now}
    if isinstance(event, BacktestSucceeded):
        metrics = event.result.metrics.model_dump(mode="json")
        changes |= {
            "state": TrialStatus.SUCCESS,
            "metrics": metrics,
            "score": objective.score(metrics),
            "returns": curve_returns(event),
            "cached": event.cached_from is not None,
        }
    elif isinstance(event, BacktestFailed):
        failure = event.failure
        skipped = failure.reason is FailureReason.INVALID_CONFIG
        changes |= {
            "state": TrialStatus.SKIPPED if skipped else TrialStatus.FAILURE,
            "reason": failure.message if skipped else f"{failure.reason.value}: {failure.message}",
        }
    else:
        changes["state"] = TrialStatus.CANCELLED
    return trial.model_copy(update=changes)


def sweep_counts(by_state: Mapping[TrialStatus, int], total: int) -> SweepCounts:
    """The counts the API shows from the trials by status; `total` is the trials the sweep will have."""
    return SweepCounts(
        total=total,
        done=by_state.get(TrialStatus.SUCCESS, 0),
        failed=by_state.get(TrialStatus.FAILURE, 0),
        skipped=by_state.get(TrialStatus.SKIPPED, 0),
        cancelled=by_state.get(TrialStatus.CANCELLED, 0),
        running=by_state.get(TrialStatus.SUBMITTED, 0),
    )


def research_trial(record: TrialRecord) -> Trial:
    """The research library's view of an ended trial (what `ranked` reads)."""
    returns = np.array(record.returns, dtype=np.float64) if record.returns is not None else None
    return Trial(record.id, record.params, TRIAL_STATE[record.state], record.metrics, record.reason, returns)


def summary(record: SweepRecord, trials: list[TrialRecord]) -> SweepResult:
    """The ranked sweep: its ended trials, the best, and the overfitting statistics over them.

    A sweep's trials share symbols, interval and range, so their curves have the same points; one whose
    curve differs (e.g. an uploaded strategy's range cut short) is left out of PBO rather than misaligned.
    """
    ended = [research_trial(t) for t in trials if t.state in TRIAL_STATE]
    lengths = [len(t.returns) for t in ended if t.returns is not None]
    common = max(set(lengths), key=lengths.count) if lengths else 0
    for trial in ended:
        if trial.returns is not None and len(trial.returns) != common:
            trial.returns = None
    return ranked(ended, record.search.ranking(), record.search.pbo_splits)


def best_summary(trial: TrialRecord | None) -> dict[str, Any] | None:
    """The `best` field of the sweep: id, params and metrics of the best trial so far."""
    if trial is None:
        return None
    return {"id": trial.id, "params": trial.params, "metrics": trial.metrics, "task_id": trial.task_id}
