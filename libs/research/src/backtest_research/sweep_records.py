"""The MongoDB documents of a platform sweep: one in `sweeps` per sweep, one in `sweep_trials` per trial.

The gateway inserts the sweep (PENDING, with its base config and search) and reads both; the sweeper
owns every change after that. A trial is one backtest of the base config with its params; trials run in
chunks, one task each (`chunk_task_id`: derived from the sweep and the chunk's trials, so a resubmission
is the same task), and a trial's `task_id` names the chunk that ran it.

Nested models are stored as JSON data; the top-level timestamps are BSON dates (read with tz_aware=True).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from backtest_core.contracts import SweepCounts, SweepState
from backtest_core.model.config import BacktestConfig, Frozen, UtcDatetime
from pydantic import Field

from backtest_research.search import SweepSearch
from backtest_research.space import Value

Document = dict[str, Any]
SWEEPS_COLLECTION = "sweeps"
TRIALS_COLLECTION = "sweep_trials"


class TrialStatus(StrEnum):
    """Where a trial is: planned, out as a task, or ended."""

    PLANNED = "PLANNED"
    SUBMITTED = "SUBMITTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"  # the strategy's validation refused the params; never run
    CANCELLED = "CANCELLED"


OPEN_TRIALS = (TrialStatus.PLANNED, TrialStatus.SUBMITTED)
ENDED_TRIALS = (TrialStatus.SUCCESS, TrialStatus.FAILURE, TrialStatus.SKIPPED)  # what ranking reads


def chunk_task_id(sweep_id: str, trials: Sequence[int]) -> str:
    """The task id of a chunk of a sweep's trials: 32 hex characters, the same for the same trials."""
    text = f"sweep:{sweep_id}:chunk:{','.join(map(str, trials))}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def trial_document_id(sweep_id: str, trial: int) -> str:
    """The `_id` of a trial's document."""
    return f"{sweep_id}:{trial}"


class StrategyName(Frozen):
    """The uploaded strategy a sweep runs, by name and version (None for a built-in)."""

    name: str
    version: int


class SweepRecord(Frozen):
    """A sweep's document (without `_id`, which is `sweep_id`)."""

    sweep_id: str
    user_id: str
    state: SweepState
    config: BacktestConfig
    search: SweepSearch
    strategy: StrategyName | None = None
    walkforward_id: str | None = None  # a walk-forward's fold sweep: not counted as the user's open sweep
    counts: SweepCounts
    best: dict[str, Any] | None = None  # {"id", "params", "metrics"} of the best trial so far
    overfitting: dict[str, Any] | None = None  # set when the sweep ends: {"pbo", "deflated_sharpe", ...}
    failure: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None


class TrialRecord(Frozen):
    """A trial's document (without `_id`, which is `trial_document_id`). `returns` are the returns
    between the points of its equity curve, packed (`backtest_core.model.results.pack_returns`), kept for the
    sweep's overfitting statistics; `task_id` is the chunk's task that ran it (None while PLANNED)."""

    sweep_id: str
    user_id: str
    id: int = Field(ge=0)
    task_id: str | None = None
    params: dict[str, Value]
    state: TrialStatus
    metrics: dict[str, Any] | None = None
    score: float | None = None  # the objective's value to maximise; None when not eligible
    reason: str | None = None
    returns: str | None = None
    cache_key: str | None = None  # a single backtest's key of the trial's config (contracts.cache_key)
    cached: bool = False
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The trial as the output contract gives it (the returns left out), with its task and whether the
        result cache answered it."""
        return {
            "id": self.id,
            "params": self.params,
            "state": self.state.value,
            "metrics": self.metrics,
            "reason": self.reason,
            "task_id": self.task_id,
            "cached": self.cached,
        }


_TIMES = ("created_at", "updated_at", "finished_at")


def sweep_document(record: SweepRecord) -> Document:
    """A sweep as stored: `_id` the sweep id, timestamps as dates."""
    document = record.model_dump(mode="json")
    document |= {name: getattr(record, name) for name in _TIMES}
    document["_id"] = record.sweep_id
    return document


def trial_document(trial: TrialRecord) -> Document:
    """A trial as stored: `_id` = sweep id and trial id."""
    document = trial.model_dump(mode="json")
    document["updated_at"] = trial.updated_at
    document["_id"] = trial_document_id(trial.sweep_id, trial.id)
    return document


def read_sweep(document: Mapping[str, Any]) -> SweepRecord:
    """The record of a stored sweep."""
    return SweepRecord.model_validate({k: v for k, v in document.items() if k != "_id"})


def read_trial(document: Mapping[str, Any]) -> TrialRecord:
    """The record of a stored trial."""
    return TrialRecord.model_validate({k: v for k, v in document.items() if k != "_id"})
