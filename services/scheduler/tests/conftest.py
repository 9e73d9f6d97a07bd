"""Hand-written fakes of the scheduler's ports and builders of test messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.contracts import RunBacktestJob, SubmitBacktest, TaskState, new_id
from backtest_core.errors import DataError
from backtest_core.model.config import BacktestConfig
from backtest_scheduler.admission import AdmissionState
from backtest_scheduler.decisions import CachedResult
from backtest_scheduler.errors import TaskConflict
from backtest_scheduler.task import StoredTask, TaskRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_config(**changes: object) -> BacktestConfig:
    """Return a small valid config (sma_cross on BTCUSDT daily)."""
    base: dict[str, object] = {
        "strategy": "sma_cross",
        "params": {"fast": 5, "slow": 20},
        "symbols": ["BTCUSDT"],
    }
    return BacktestConfig.model_validate(base | changes)


def make_submit(**changes: object) -> SubmitBacktest:
    """Return a submission of a fresh task by user u1."""
    return SubmitBacktest(task_id=new_id(), user_id="u1", config=make_config(**changes))


class InMemoryTaskStore:
    """TaskStore in a dict, with revisions like the KV bucket."""

    def __init__(self) -> None:
        self.tasks: dict[str, StoredTask] = {}

    async def get(self, task_id: str) -> StoredTask | None:
        return self.tasks.get(task_id)

    async def create(self, record: TaskRecord) -> int:
        if record.task_id in self.tasks:
            raise TaskConflict(f"task {record.task_id} exists")
        self.tasks[record.task_id] = StoredTask(record, 1)
        return 1

    async def update(self, record: TaskRecord, revision: int) -> int:
        current = self.tasks.get(record.task_id)
        if current is None or current.revision != revision:
            raise TaskConflict(f"task {record.task_id} is not at revision {revision}")
        self.tasks[record.task_id] = StoredTask(record, revision + 1)
        return revision + 1

    async def waiting_for_requeue(self) -> list[TaskRecord]:
        return [
            t.record
            for t in self.tasks.values()
            if t.record.state is TaskState.RETRY and t.record.requeue_at is not None
        ]

    async def owing(self) -> list[str]:
        return [t.record.task_id for t in self.tasks.values() if t.record.outbox is not None]


class FakeResultCache:
    """ResultCache over a dict cache_key -> CachedResult."""

    def __init__(self) -> None:
        self.hits: dict[str, CachedResult] = {}

    async def find_success(self, cache_key: str) -> CachedResult | None:
        return self.hits.get(cache_key)


class FakeFingerprints:
    """Fingerprints from a dict symbol -> fingerprint; a missing symbol has no data."""

    def __init__(self, prints: dict[str, str] | None = None) -> None:
        self.prints = prints if prints is not None else {"BTCUSDT": "fp-btc-1", "ETHUSDT": "fp-eth-1"}

    async def fingerprint(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> str:
        if symbol not in self.prints:
            raise DataError(f"expected candles of {symbol} {interval} in the store, found none")
        return self.prints[symbol]


class FakeDeadJobs:
    """DeadJobs over a dict stream_seq -> job."""

    def __init__(self) -> None:
        self.jobs: dict[int, RunBacktestJob] = {}
        self.removes_to_fail = 0  # the next this many removes raise (a NATS timeout)

    async def read(self, stream_seq: int) -> RunBacktestJob | None:
        return self.jobs.get(stream_seq)

    async def remove(self, stream_seq: int) -> None:
        if self.removes_to_fail:
            self.removes_to_fail -= 1
            raise TimeoutError("nats: timeout")
        self.jobs.pop(stream_seq, None)


@pytest.fixture
def store() -> InMemoryTaskStore:
    return InMemoryTaskStore()


@pytest.fixture
def cache() -> FakeResultCache:
    return FakeResultCache()


@pytest.fixture
def fingerprints() -> FakeFingerprints:
    return FakeFingerprints()


@pytest.fixture
def dead_jobs() -> FakeDeadJobs:
    return FakeDeadJobs()


class InMemoryAdmissionStore:
    """AdmissionStore in one attribute, with revisions like the KV bucket."""

    def __init__(self) -> None:
        self.state: AdmissionState | None = None
        self.revision = 0

    async def load(self) -> tuple[AdmissionState, int | None]:
        if self.state is None:
            return AdmissionState(), None
        return self.state, self.revision

    async def save(self, state: AdmissionState, revision: int | None) -> None:
        expected = None if self.state is None else self.revision
        if revision != expected:
            raise TaskConflict(f"admission state is not at revision {revision}")
        self.state, self.revision = state, self.revision + 1


@pytest.fixture
def admission_store() -> InMemoryAdmissionStore:
    return InMemoryAdmissionStore()
