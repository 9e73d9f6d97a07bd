"""Hand-written fakes of the runner's ports, for the service tests (no broker, no Docker, no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from backtest_core.candles import Candles
from backtest_core.config import BacktestConfig
from backtest_core.contracts import (
    Failure,
    FailureReason,
    RunBacktestJob,
    SandboxJob,
    SandboxProgress,
)
from backtest_core.results import BacktestResult
from backtest_runner.executor import JobExecutor
from backtest_runner.ports import ReportTooLarge, RunReport
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import SandboxRun
from backtest_runner.sandbox.limits import SandboxLimits
from backtest_runner.sandbox.outcome import (
    KillSwitch,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    SandboxSucceeded,
)
from backtest_runner.service import RunnerService
from backtest_testinfra import make_backtest_result, make_metrics

DAY_NS = 86_400_000_000_000
CONFIG = BacktestConfig(
    strategy="sma_cross",
    symbols=["BTCUSDT", "ETHUSDT"],
    interval="1d",
    start=datetime(2020, 1, 1, tzinfo=UTC),
    end=datetime(2020, 1, 6, tzinfo=UTC),
)
START_NS = 1_577_836_800_000_000_000


def make_job(task_id: str = "a" * 32, config: BacktestConfig = CONFIG) -> RunBacktestJob:
    return RunBacktestJob(task_id=task_id, attempt=1, user_id="u1", config=config, cache_key="k" * 64)


def make_result(config: BacktestConfig = CONFIG) -> BacktestResult:
    metrics = make_metrics(final_equity=1234.5, total_return_pct=23.45, bars=5)
    return make_backtest_result(config, metrics)


class FakeCandleSource:
    """Five daily bars per symbol from START_NS; `fail` raises, `empty` symbols return no bars."""

    def __init__(self, fail: Exception | None = None, empty: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.empty = empty
        self.calls: list[tuple[str, str, int | None, int | None]] = []

    def load(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        self.calls.append((symbol, interval, start_ns, end_ns))
        if self.fail is not None:
            raise self.fail
        n = 0 if symbol in self.empty else 5
        close = np.linspace(100.0, 104.0, n)
        return Candles(
            symbol,
            interval,
            START_NS + np.arange(n, dtype=np.int64) * DAY_NS,
            close,
            close,
            close,
            close,
            np.ones(n),
        )


@dataclass
class FakeSandbox:
    """Emits `progress`, then returns `outcome`; with `wait_for_kill` it runs until killed."""

    outcome: SandboxOutcome = field(default_factory=lambda: SandboxSucceeded(make_result()))
    progress: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    wait_for_kill: bool = False
    release: asyncio.Event | None = None
    seen_jobs: list[SandboxJob] = field(default_factory=list)
    seen_files: list[list[str]] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    limits: SandboxLimits = field(default_factory=SandboxLimits)

    def remove_orphans(self) -> int:
        return 0

    async def run(
        self, run: SandboxRun, on_progress: Callable[[SandboxProgress], None], kill_switch: KillSwitch
    ) -> SandboxOutcome:
        self.seen_jobs.append(SandboxJob.model_validate_json((run.job_dir / "job.json").read_text()))
        self.seen_files.append(sorted(str(p.relative_to(run.job_dir)) for p in run.job_dir.rglob("*")))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for fraction in self.progress:
                on_progress(SandboxProgress(fraction=fraction, stage="proposals"))
            if self.wait_for_kill:
                killed = asyncio.Event()
                loop = asyncio.get_running_loop()
                kill_switch.arm(lambda: loop.call_soon_threadsafe(killed.set))
                await killed.wait()
                assert kill_switch.reason is not None
                return SandboxAborted(kill_switch.reason)
            if self.release is not None:
                await self.release.wait()
            return self.outcome
        finally:
            self.running -= 1


class RecordingPublisher:
    def __init__(self) -> None:
        self.reports: list[RunReport] = []
        self.max_bytes: int | None = None  # like JetStreamReportPublisher's limit, when set

    async def publish(self, report: RunReport) -> None:
        size = len(report.model_dump_json().encode())
        if self.max_bytes is not None and size > self.max_bytes:
            raise ReportTooLarge(size, self.max_bytes)
        self.reports.append(report)

    def kinds(self, task_id: str | None = None) -> list[str]:
        return [r.kind for r in self.reports if task_id is None or r.task_id == task_id]


@dataclass
class FakeMessage:
    data: bytes
    events: list[str] = field(default_factory=list)

    async def in_progress(self) -> None:
        self.events.append("in_progress")

    async def ack(self) -> None:
        self.events.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.events.append("nak")

    async def term(self) -> None:
        self.events.append("term")


class FakeJobSource:
    """A queue of job messages; `fetch_one` returns None when empty (like a fetch timeout)."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.pending = list(messages)

    async def fetch_one(self, timeout_s: float) -> FakeMessage | None:
        await asyncio.sleep(0)
        return self.pending.pop(0) if self.pending else None


@dataclass
class Harness:
    sandbox: FakeSandbox
    candles: FakeCandleSource
    publisher: RecordingPublisher
    work_dir: Path

    config: BacktestConfig = CONFIG
    start_ns: int = START_NS
    day_ns: int = DAY_NS
    infrastructure_failure: SandboxFailed = field(
        default_factory=lambda: SandboxFailed(
            Failure(reason=FailureReason.INFRASTRUCTURE, message="Docker failed")
        )
    )

    @staticmethod
    def job(task_id: str = "a" * 32, config: BacktestConfig = CONFIG) -> RunBacktestJob:
        return make_job(task_id, config)

    @staticmethod
    def result(config: BacktestConfig = CONFIG) -> BacktestResult:
        return make_result(config)

    @staticmethod
    def message(job: RunBacktestJob | bytes) -> FakeMessage:
        return FakeMessage(job if isinstance(job, bytes) else job.model_dump_json().encode())

    def executor(self) -> JobExecutor:
        return JobExecutor(
            runner_id="runner-1",
            candles=self.candles,
            sandbox=self.sandbox,
            publisher=self.publisher,
            work_dir=self.work_dir,
            equity_points_max=500,
            throttle_factory=lambda: ProgressThrottle(0.0, 0.1, lambda: 0.0),
        )

    def service(
        self, messages: list[FakeMessage], slots: int = 2, heartbeat_s: float = 60.0
    ) -> RunnerService:
        return RunnerService(
            source=FakeJobSource(messages),
            executor=self.executor(),
            slots=slots,
            fetch_timeout_s=0.01,
            heartbeat_interval_s=heartbeat_s,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(FakeSandbox(), FakeCandleSource(), RecordingPublisher(), tmp_path / "jobs")
