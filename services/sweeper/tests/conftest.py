"""Hand-written fakes of the sweeper's ports, kept as plain dicts and lists, and builders of sweeps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from backtest_core.contracts import (
    TERMINAL_SWEEP_STATES,
    CancelBacktest,
    CancelSweep,
    SubmitBacktest,
    SubmitSweep,
    SweepCounts,
    SweepEvent,
    SweepState,
    WalkForwardEvent,
)
from backtest_core.model.config import BacktestConfig
from backtest_research.search import SweepSearch
from backtest_research.sweep_records import OPEN_TRIALS, SweepRecord, TrialRecord, TrialStatus
from backtest_research.walkforward_records import FoldState, WalkForwardRecord
from backtest_sweeper.plan import Chunking
from backtest_sweeper.ports import Reused
from backtest_sweeper.service import SweeperService

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_sweep(sweep_id: str = "5" * 32, **search: Any) -> SweepRecord:
    """A PENDING sweep of sma_cross on BTCUSDT daily over `search` (default: a 2 x 3 grid)."""
    config = BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSDT"]})
    return SweepRecord(
        sweep_id=sweep_id,
        user_id="alice",
        state=SweepState.PENDING,
        config=config,
        search=SweepSearch.model_validate({"space": ["fast=5,10", "slow=20,30,40"]} | search),
        counts=SweepCounts(total=0, done=0, failed=0, skipped=0, cancelled=0, running=0),
        created_at=T0,
        updated_at=T0,
    )


class FakeSweepStore:
    """SweepStore over dicts, with the conditional writes of MongoSweepStore."""

    def __init__(self) -> None:
        self.sweeps: dict[str, SweepRecord] = {}
        self.trial_rows: dict[tuple[str, int], TrialRecord] = {}
        self.earlier_sharpes: list[float] = []  # the user's other backtests (per-bar Sharpe)
        self.single_backtests: dict[str, Reused] = {}  # SUCCESS backtests by cache key

    async def get(self, sweep_id: str) -> SweepRecord | None:
        return self.sweeps.get(sweep_id)

    async def update(self, sweep_id: str, fields: Mapping[str, Any]) -> None:
        record = self.sweeps[sweep_id]
        if record.finished_at is None:
            self.sweeps[sweep_id] = record.model_copy(update=self._parsed(fields))

    async def set_state(self, sweep_id: str, state: SweepState, fields: Mapping[str, Any]) -> bool:
        record = self.sweeps[sweep_id]
        if record.state in TERMINAL_SWEEP_STATES:
            return False
        self.sweeps[sweep_id] = record.model_copy(update=self._parsed(fields) | {"state": state})
        return True

    async def open_sweeps(self) -> list[str]:
        return [key for key, record in self.sweeps.items() if record.state not in TERMINAL_SWEEP_STATES]

    async def add_trials(self, trials: list[TrialRecord]) -> None:
        for trial in trials:
            self.trial_rows.setdefault((trial.sweep_id, trial.id), trial)

    async def trials(
        self, sweep_id: str, states: tuple[TrialStatus, ...] | None = None, limit: int = 0
    ) -> list[TrialRecord]:
        found = sorted(
            (
                t
                for (sid, _), t in self.trial_rows.items()
                if sid == sweep_id and (states is None or t.state in states)
            ),
            key=lambda t: t.id,
        )
        return found[:limit] if limit else found

    async def trials_of_task(self, task_id: str) -> list[TrialRecord]:
        found = sorted((t for t in self.trial_rows.values() if t.task_id == task_id), key=lambda t: t.id)
        return [t.model_copy(update={"returns": None}) for t in found]

    async def save_trials(self, trials: list[TrialRecord]) -> int:
        stored = 0
        for trial in trials:
            key = (trial.sweep_id, trial.id)
            if self.trial_rows[key].state in OPEN_TRIALS:
                self.trial_rows[key] = trial
                stored += 1
        return stored

    async def mark_submitted(self, sweep_id: str, chunks: Mapping[str, list[int]], now: datetime) -> None:
        for task_id, trials in chunks.items():
            for trial in trials:
                row = self.trial_rows[(sweep_id, trial)]
                if row.state is TrialStatus.PLANNED:
                    changes = {"state": TrialStatus.SUBMITTED, "task_id": task_id, "updated_at": now}
                    self.trial_rows[(sweep_id, trial)] = row.model_copy(update=changes)

    async def reusable(self, keys: list[str]) -> dict[str, Reused]:
        found = {
            t.cache_key: Reused(t.metrics, t.returns)
            for t in self.trial_rows.values()
            if t.cache_key in keys and t.state is TrialStatus.SUCCESS and t.metrics is not None and t.returns
        }
        return {
            key: found.get(key) or self.single_backtests[key]
            for key in keys
            if key in found or key in self.single_backtests
        }

    async def cancel_planned(self, sweep_id: str, now: datetime) -> None:
        for key, trial in self.trial_rows.items():
            if key[0] == sweep_id and trial.state is TrialStatus.PLANNED:
                self.trial_rows[key] = trial.model_copy(
                    update={"state": TrialStatus.CANCELLED, "updated_at": now}
                )

    async def counts(self, sweep_id: str) -> dict[TrialStatus, int]:
        return dict(Counter(t.state for t in await self.trials(sweep_id)))

    async def best(self, sweep_id: str) -> TrialRecord | None:
        scored = [t for t in await self.trials(sweep_id) if t.score is not None]
        best = min(scored, key=lambda t: (-(t.score or 0.0), t.id)) if scored else None
        return best.model_copy(update={"returns": None}) if best else None

    async def other_sharpes(self, user_id: str, config: BacktestConfig, sweep_id: str) -> list[float]:
        return list(self.earlier_sharpes)

    @staticmethod
    def _parsed(fields: Mapping[str, Any]) -> dict[str, Any]:
        parsed = dict(fields)
        if isinstance(parsed.get("counts"), dict):
            parsed["counts"] = SweepCounts.model_validate(parsed["counts"])
        return parsed


class FakeFingerprints:
    """DataFingerprints of fixed data: one fingerprint for every symbol, None of them missing."""

    def __init__(self, fingerprint: str = "fp-1") -> None:
        self.value = fingerprint

    async def fingerprint(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> str:
        return f"{self.value}/{symbol}/{interval}"


class FakeSweepBus:
    """SweepBus that records what was sent."""

    def __init__(self) -> None:
        self.submitted: list[SubmitBacktest] = []
        self.cancelled: list[CancelBacktest] = []
        self.events: list[SweepEvent] = []

    async def submit(self, command: SubmitBacktest) -> None:
        self.submitted.append(command)

    async def cancel(self, command: CancelBacktest) -> None:
        self.cancelled.append(command)

    async def publish(self, event: SweepEvent) -> None:
        self.events.append(event)


@pytest.fixture
def store() -> FakeSweepStore:
    return FakeSweepStore()


@pytest.fixture
def bus() -> FakeSweepBus:
    return FakeSweepBus()


@pytest.fixture
def service(store: FakeSweepStore, bus: FakeSweepBus) -> SweeperService:
    """Chunks of 2 trials (a 2 x 3 grid: 3 chunks), 4 trials out at once: two chunks."""
    return SweeperService(store, bus, lambda: T0, trials_in_flight=4, chunking=Chunking(max_trials=2))


class FakeSweepStoreWithFolds(FakeSweepStore):
    """FakeSweepStore that also stores a walk-forward's fold sweeps (insert once)."""

    async def add_sweeps(self, records: list[SweepRecord]) -> None:
        for record in records:
            self.sweeps.setdefault(record.sweep_id, record)


class FakeWalkForwardBus(FakeSweepBus):
    """FakeSweepBus that also records the fold sweeps' commands and the walk-forward's events."""

    def __init__(self) -> None:
        super().__init__()
        self.sweep_commands: list[SubmitSweep | CancelSweep] = []
        self.walkforward_events: list[WalkForwardEvent] = []

    async def publish_walkforward(self, event: WalkForwardEvent) -> None:
        self.walkforward_events.append(event)

    async def submit_sweep(self, command: SubmitSweep) -> None:
        self.sweep_commands.append(command)

    async def cancel_sweep(self, command: CancelSweep) -> None:
        self.sweep_commands.append(command)


class FakeWalkForwardStore:
    """WalkForwardStore over a dict; as MongoWalkForwardStore, a finished one never changes."""

    def __init__(self) -> None:
        self.records: dict[str, WalkForwardRecord] = {}

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        return self.records.get(walkforward_id)

    async def save(self, record: WalkForwardRecord) -> bool:
        held = self.records.get(record.walkforward_id)
        if held is not None and held.finished_at is not None:
            return False
        self.records[record.walkforward_id] = record
        return True

    async def open_walkforwards(self) -> list[str]:
        return [key for key, record in self.records.items() if record.finished_at is None]

    async def of_sweep(self, sweep_id: str) -> str | None:
        return next(
            (k for k, r in self.records.items() if any(f.sweep_id == sweep_id for f in r.folds)), None
        )

    async def of_test_task(self, task_id: str) -> str | None:
        return next(
            (
                k
                for k, r in self.records.items()
                if any(f.test_task_id == task_id and f.state is FoldState.TESTING for f in r.folds)
            ),
            None,
        )
