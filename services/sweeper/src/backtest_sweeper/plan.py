"""The sweeper's decisions, pure: which trials a sweep has, how they are grouped into chunks (one task
each), what a chunk's end makes of its trials, what a sweep's counts and summary are. No I/O; the
service stores and publishes what these return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backtest_core.contracts import (
    MAX_CHUNK_TRIALS,
    BacktestCancelled,
    BacktestFailed,
    BacktestSucceeded,
    CancelBacktest,
    FailureReason,
    SubmitBacktest,
    SweepCounts,
    TrialSpec,
)
from backtest_core.contracts.cache_key import compute_cache_key
from backtest_core.engine.trials import TrialState
from backtest_core.errors import BacktestError, ConfigError
from backtest_core.model.candles import INTERVAL_NS
from backtest_core.model.config import BacktestConfig, BuiltinStrategy
from backtest_core.model.results import TrialOutcome, TrialsResult, unpack_returns
from backtest_core.strategy.loader import load_strategy
from backtest_research.space import Value
from backtest_research.sweep import Objective, SweepResult, Trial, ranked
from backtest_research.sweep import chunk_size as chunk_size_of
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus

from backtest_sweeper.ports import Reused

TrialEnd = BacktestSucceeded | BacktestFailed | BacktestCancelled
TRIAL_STATE: dict[TrialStatus, TrialState] = {  # the research library's trial states for the ended statuses
    TrialStatus.SUCCESS: "SUCCESS",
    TrialStatus.FAILURE: "FAILURE",
    TrialStatus.SKIPPED: "SKIPPED",
}


@dataclass(frozen=True, slots=True)
class Chunking:
    """How a sweep's trials are grouped into tasks: each chunk about `bar_trials` bars x trials of engine
    work (one sandbox run, the candles read once), at most `max_trials` trials."""

    bar_trials: int = 25_000_000
    max_trials: int = MAX_CHUNK_TRIALS


def estimated_bars(config: BacktestConfig) -> int | None:
    """The bars a config's range spans (None when the range is open: the data decides)."""
    if config.start is None or config.end is None:
        return None
    span_ns = int((config.end - config.start).total_seconds() * 1e9)
    return max(1, span_ns // INTERVAL_NS[config.interval])


def chunk_size(record: SweepRecord, chunking: Chunking) -> int:
    """The trials of one chunk of this sweep: its trials split evenly into the fewest chunks of at most
    `bar_trials` bar-trials and `max_trials` trials (the same every time it is asked)."""
    bars = estimated_bars(record.config)
    return chunk_size_of(record.search.size(), bars, chunking.bar_trials, chunking.max_trials)


def chunks_to_send(
    planned: list[TrialRecord], size: int, room: int, nothing_out: bool, *, all_planned: bool
) -> list[list[TrialRecord]]:
    """The chunks to send now from PLANNED trials (in id order): groups of `size`, a shorter one only
    when `planned` holds every planned trial (the sweep's last chunk), as many as fit in `room` trials
    (one at least when nothing is out, so a sweep never stalls on a limit below its chunk size)."""
    chunks: list[list[TrialRecord]] = []
    for start in range(0, len(planned), size):
        group = planned[start : start + size]
        if len(group) < size and not all_planned:
            break
        if len(group) > room and not (nothing_out and not chunks):
            break
        chunks.append(group)
        room -= len(group)
    return chunks


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
        params=params,
        state=TrialStatus.PLANNED if refused is None else TrialStatus.SKIPPED,
        reason=refused,
        updated_at=now,
    )


def initial_trials(record: SweepRecord, now: datetime) -> list[TrialRecord]:
    """Every trial of a grid or random sweep, in id order (a TPE sweep asks its trials as it goes)."""
    return [new_trial(record, i, params, now) for i, params in enumerate(record.search.planned())]


def trial_cache_key(
    base: BacktestConfig, params: Mapping[str, Value], prints: Mapping[str, str], engine: str
) -> str:
    """The cache key a single backtest of the trial's config has (so either answers the other)."""
    return compute_cache_key(base.with_params(dict(params)), prints, engine)


def reused_trial(
    trial: TrialRecord, key: str, reused: Reused | None, objective: Objective, now: datetime
) -> TrialRecord:
    """The trial keyed by `key`: still PLANNED, or SUCCESS (`cached`) with what an earlier run gave."""
    if reused is None:
        return trial.model_copy(update={"cache_key": key})
    changes = {
        "state": TrialStatus.SUCCESS,
        "metrics": reused.metrics,
        "score": objective.score(reused.metrics),
        "returns": reused.returns,
        "cache_key": key,
        "cached": True,
        "updated_at": now,
    }
    return trial.model_copy(update=changes)


def chunk_command(record: SweepRecord, task_id: str, trials: Sequence[TrialRecord]) -> SubmitBacktest:
    """The command that runs a chunk of trials as one task; its message id is the chunk's, so a resend is
    stored once."""
    return SubmitBacktest(
        message_id=f"{task_id}-submit",
        task_id=task_id,
        user_id=record.user_id,
        config=record.config,
        trials=tuple(TrialSpec(trial=t.id, params=t.params) for t in trials),
    )


def cancel_command(task_id: str, user_id: str) -> CancelBacktest:
    """The command that cancels a chunk's task."""
    return CancelBacktest(message_id=f"{task_id}-cancel", task_id=task_id, user_id=user_id)


def _from_outcome(outcome: TrialOutcome | None, objective: Objective) -> dict[str, Any]:
    if outcome is None:
        return {
            "state": TrialStatus.FAILURE,
            "reason": "bad_output: the chunk's result did not name this trial",
        }
    if outcome.state == "SUCCESS" and outcome.metrics is not None:
        metrics = outcome.metrics.model_dump(mode="json")
        return {
            "state": TrialStatus.SUCCESS,
            "metrics": metrics,
            "score": objective.score(metrics),
            "returns": outcome.returns,
        }
    state = TrialStatus.SKIPPED if outcome.state == "SKIPPED" else TrialStatus.FAILURE
    return {"state": state, "reason": outcome.reason}


def ended_trials(
    trials: Sequence[TrialRecord], event: TrialEnd, objective: Objective, now: datetime
) -> list[TrialRecord]:
    """The trials of a chunk as its task's end leaves them: each SUCCESS with metrics and returns, SKIPPED
    when the strategy's validation refused its params, or FAILURE with the reason, as its outcome says;
    every one FAILURE with the task's reason when the task failed (SKIPPED when the config was refused),
    or CANCELLED."""
    if isinstance(event, BacktestSucceeded):
        result = event.result
        if not isinstance(result, TrialsResult):
            outcomes: dict[int, TrialOutcome] = {}
        else:
            outcomes = {outcome.trial: outcome for outcome in result.outcomes}
        changes = [_from_outcome(outcomes.get(trial.id), objective) for trial in trials]
    elif isinstance(event, BacktestFailed):
        failure = event.failure
        skipped = failure.reason is FailureReason.INVALID_CONFIG
        change = {
            "state": TrialStatus.SKIPPED if skipped else TrialStatus.FAILURE,
            "reason": failure.message if skipped else f"{failure.reason.value}: {failure.message}",
        }
        changes = [change] * len(trials)
    else:
        changes = [{"state": TrialStatus.CANCELLED}] * len(trials)
    return [
        trial.model_copy(update={**change, "updated_at": now})
        for trial, change in zip(trials, changes, strict=True)
    ]


def moved(
    by_state: Mapping[TrialStatus, int], count: int, source: TrialStatus, target: TrialStatus
) -> dict[TrialStatus, int]:
    """The trials by status after `count` of them went from `source` to `target`."""
    out = dict(by_state)
    out[source] = out.get(source, 0) - count
    out[target] = out.get(target, 0) + count
    if out[source] < 0:
        raise ValueError(f"{count} trials cannot leave {source.value}: it held {by_state.get(source, 0)}")
    if out[source] == 0:
        del out[source]
    return out


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
    returns = unpack_returns(record.returns) if record.returns is not None else None
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
