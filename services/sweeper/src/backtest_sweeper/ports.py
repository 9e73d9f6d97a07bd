"""What the sweeper needs from the outside: its stores (MongoDB) and the bus (NATS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from backtest_core.contracts import (
    CancelBacktest,
    CancelSweep,
    SubmitBacktest,
    SubmitSweep,
    SweepEvent,
    SweepState,
    WalkForwardEvent,
)
from backtest_core.model.config import BacktestConfig
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus
from backtest_research.walkforward_records import WalkForwardRecord


@dataclass(frozen=True, slots=True)
class Reused:
    """What a trial takes from an earlier run of its config: its metrics and packed returns."""

    metrics: dict[str, Any]
    returns: str | None


class SweepStore(Protocol):
    """The `sweeps` and `sweep_trials` documents."""

    async def get(self, sweep_id: str) -> SweepRecord | None:
        """The sweep, or None."""
        ...

    async def add_sweeps(self, records: list[SweepRecord]) -> None:
        """Store new sweeps (a walk-forward's folds); one stored already is left as it is."""
        ...

    async def update(self, sweep_id: str, fields: Mapping[str, Any]) -> None:
        """Set fields of a sweep that has not finished (`finished_at` unset): a finished one never changes."""
        ...

    async def open_sweeps(self) -> list[str]:
        """The ids of every PENDING or RUNNING sweep."""
        ...

    async def add_trials(self, trials: list[TrialRecord]) -> None:
        """Store new trials; one stored already (same sweep and id) is left as it is."""
        ...

    async def trials(
        self, sweep_id: str, states: tuple[TrialStatus, ...] | None = None, limit: int = 0
    ) -> list[TrialRecord]:
        """The sweep's trials (in those states), in id order; `limit` 0: all."""
        ...

    async def trials_of_task(self, task_id: str) -> list[TrialRecord]:
        """The trials a chunk's task runs, in id order (none for a task of no sweep), without returns."""
        ...

    async def save_trials(self, trials: list[TrialRecord]) -> int:
        """Store the trials' new states in one write, each only while it is open (an end is never
        overwritten); the number stored."""
        ...

    async def mark_submitted(self, sweep_id: str, chunks: Mapping[str, list[int]], now: datetime) -> None:
        """Mark the PLANNED trials of each chunk (task id: trial ids) SUBMITTED as it, in one write."""
        ...

    async def reusable(self, keys: list[str]) -> dict[str, Reused]:
        """The metrics and returns of finished runs with these cache keys: a SUCCESS trial of any sweep,
        or a single backtest's SUCCESS (its returns from its equity curve)."""
        ...

    async def cancel_planned(self, sweep_id: str, now: datetime) -> None:
        """Mark every PLANNED trial of the sweep CANCELLED at `now`, in one write."""
        ...

    async def counts(self, sweep_id: str) -> dict[TrialStatus, int]:
        """The sweep's trials by status."""
        ...

    async def best(self, sweep_id: str) -> TrialRecord | None:
        """The trial with the highest score (the lowest id among equals), or None; without returns."""
        ...

    async def set_state(self, sweep_id: str, state: SweepState, fields: Mapping[str, Any]) -> bool:
        """Move a sweep in an open state (PENDING, RUNNING) to `state` with `fields`; False otherwise."""
        ...

    async def other_sharpes(self, user_id: str, config: BacktestConfig, sweep_id: str) -> list[float]:
        """The per-bar Sharpe of every successful backtest of the user with the config's strategy, symbols
        and interval (the `backtests` collection) and of every successful trial of the user's other sweeps
        of that setup."""
        ...


class SweepBus(Protocol):
    """Commands to the scheduler and the sweep's events."""

    async def submit(self, command: SubmitBacktest) -> None: ...

    async def cancel(self, command: CancelBacktest) -> None: ...

    async def publish(self, event: SweepEvent) -> None: ...

    async def publish_walkforward(self, event: WalkForwardEvent) -> None: ...

    async def submit_sweep(self, command: SubmitSweep) -> None: ...

    async def cancel_sweep(self, command: CancelSweep) -> None: ...


class WalkForwardStore(Protocol):
    """The `walkforwards` documents (each with its folds)."""

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        """The walk-forward, or None."""
        ...

    async def save(self, record: WalkForwardRecord) -> bool:
        """Store the walk-forward's new state unless it had finished; False when it had."""
        ...

    async def open_walkforwards(self) -> list[str]:
        """The ids of every walk-forward not finished."""
        ...

    async def of_sweep(self, sweep_id: str) -> str | None:
        """The walk-forward one of whose folds this sweep is, or None."""
        ...

    async def of_test_task(self, task_id: str) -> str | None:
        """The walk-forward whose TESTING fold runs as this task, or None."""
        ...
