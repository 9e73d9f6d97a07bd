"""Hand-written fakes of the runner's ports, for the service tests (no broker, no Docker, no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from backtest_core.contracts import (
    BATCH_FILE,
    Failure,
    FailureReason,
    RunBacktestJob,
    SandboxBatch,
    SandboxError,
    SandboxJob,
    SandboxProgress,
    SandboxResult,
)
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult
from backtest_runner.executor import JobExecutor
from backtest_runner.ports import ReportTooLarge, RunReport
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import SandboxRun
from backtest_runner.sandbox.limits import SandboxLimits
from backtest_runner.sandbox.outcome import (
    KillReason,
    KillSwitch,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    SandboxSucceeded,
)
from backtest_runner.sandbox.output import ParsedLine
from backtest_runner.service import RunnerService
from backtest_testinfra import make_backtest_result

DAY_NS = 86_400_000_000_000
CONFIG = BacktestConfig(
    strategy="sma_cross",
    symbols=["BTCUSDT", "ETHUSDT"],
    interval="1d",
    start=datetime(2020, 1, 1, tzinfo=UTC),
    end=datetime(2020, 1, 6, tzinfo=UTC),
)
START_NS = 1_577_836_800_000_000_000
FINAL_EQUITY = 1234.5  # of every result the fake sandboxes return


def make_job(task_id: str = "a" * 32, config: BacktestConfig = CONFIG) -> RunBacktestJob:
    return RunBacktestJob(task_id=task_id, attempt=1, user_id="u1", config=config, cache_key="k" * 64)


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


BatchStep = SandboxResult | SandboxError | SandboxOutcome | None


@dataclass
class FakeSandbox:
    """Emits `progress`, then returns `outcome` (default: a result for the job's config); with
    `wait_for_kill` it runs until killed.

    A batch runs its jobs in order: each emits `progress` and then what `batch_step(job)` says: a final
    line (the job ended), a SandboxOutcome (the container ends there with it), or None (the job runs
    until killed; the container ends as aborted, or as a timeout or output cap if killed for that).
    The default step is a result for the job's config.
    """

    outcome: SandboxOutcome | None = None  # None: a result for the job's config
    progress: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    wait_for_kill: bool = False
    release: asyncio.Event | None = None
    seen_jobs: list[SandboxJob] = field(default_factory=list)
    seen_files: list[list[str]] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    batch_step: Callable[[SandboxJob], BatchStep] = field(
        default=lambda job: SandboxResult(
            task_id=job.task_id, result=make_backtest_result(job.config, final_equity=FINAL_EQUITY)
        )
    )
    seen_batches: list[list[str]] = field(default_factory=list)

    def remove_orphans(self) -> int:
        return 0

    async def run_batch(
        self, run: SandboxRun, jobs: int, on_line: Callable[[ParsedLine], None], kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        batch = SandboxBatch.model_validate_json((run.job_dir / BATCH_FILE).read_text())
        assert len(batch.jobs) == jobs
        if jobs == 1:  # a job alone in its sandbox (the executor's first try): as `run`
            return await self._run_one_of_batch(run, batch.jobs[0], on_line, kill_switch)
        self.seen_batches.append([job.task_id for job in batch.jobs])
        self.seen_files.append(sorted(str(p.relative_to(run.job_dir)) for p in run.job_dir.rglob("*")))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for job in batch.jobs:
                for fraction in self.progress:
                    on_line(SandboxProgress(task_id=job.task_id, fraction=fraction, stage="proposals"))
                step = self.batch_step(job)
                if isinstance(step, SandboxResult | SandboxError):
                    on_line(step)
                    await asyncio.sleep(0)
                    continue
                if step is not None:
                    return step
                reason = await _until_killed(kill_switch)
                if reason in (KillReason.TIMEOUT, KillReason.OUTPUT_LIMIT):
                    return SandboxFailed(
                        Failure(reason=FailureReason(reason.value), message=f"killed: {reason}")
                    )
                return SandboxAborted(reason)
            return None
        finally:
            self.running -= 1

    async def _run_one_of_batch(
        self, run: SandboxRun, job: SandboxJob, on_line: Callable[[ParsedLine], None], kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        def progress(line: SandboxProgress) -> None:
            on_line(line.model_copy(update={"task_id": job.task_id}))

        outcome = await self._run_job(run, job, progress, kill_switch)
        if isinstance(outcome, SandboxSucceeded):
            on_line(SandboxResult(task_id=job.task_id, result=outcome.result))
            return None
        return outcome

    async def run(
        self, run: SandboxRun, on_progress: Callable[[SandboxProgress], None], kill_switch: KillSwitch
    ) -> SandboxOutcome:
        job = SandboxJob.model_validate_json((run.job_dir / "job.json").read_text())
        return await self._run_job(run, job, on_progress, kill_switch)

    async def _run_job(
        self,
        run: SandboxRun,
        job: SandboxJob,
        on_progress: Callable[[SandboxProgress], None],
        kill_switch: KillSwitch,
    ) -> SandboxOutcome:
        self.seen_jobs.append(job)
        self.seen_files.append(sorted(str(p.relative_to(run.job_dir)) for p in run.job_dir.rglob("*")))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for fraction in self.progress:
                on_progress(SandboxProgress(fraction=fraction, stage="proposals"))
            if self.wait_for_kill:
                return SandboxAborted(await _until_killed(kill_switch))
            if self.release is not None:
                await self.release.wait()
            return (
                SandboxSucceeded(make_backtest_result(job.config, final_equity=FINAL_EQUITY))
                if self.outcome is None
                else self.outcome
            )
        finally:
            self.running -= 1


async def _until_killed(kill_switch: KillSwitch) -> KillReason:
    killed = asyncio.Event()
    loop = asyncio.get_running_loop()
    kill_switch.arm(lambda: loop.call_soon_threadsafe(killed.set))
    await killed.wait()
    assert kill_switch.reason is not None
    return kill_switch.reason


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
    """A queue of job messages; `fetch` takes up to `limit` of them (empty, like a fetch timeout)."""

    def __init__(self, messages: list[FakeMessage]) -> None:
        self.pending = list(messages)
        self.fetched: list[int] = []  # how many each non-empty fetch returned

    async def fetch(self, limit: int, timeout_s: float) -> list[FakeMessage]:
        await asyncio.sleep(0)
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        if taken:
            self.fetched.append(len(taken))
        return list(taken)


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
        return make_backtest_result(config, final_equity=FINAL_EQUITY)

    @staticmethod
    def message(job: RunBacktestJob | bytes) -> FakeMessage:
        return FakeMessage(job if isinstance(job, bytes) else job.model_dump_json().encode())

    @staticmethod
    def source(messages: list[FakeMessage]) -> FakeJobSource:
        return FakeJobSource(messages)

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
        self,
        messages: list[FakeMessage] | FakeJobSource,
        slots: int = 2,
        heartbeat_s: float = 60.0,
        batch_max: int = 1,
    ) -> RunnerService:
        return RunnerService(
            source=messages if isinstance(messages, FakeJobSource) else FakeJobSource(messages),
            executor=self.executor(),
            slots=slots,
            fetch_timeout_s=0.01,
            heartbeat_interval_s=heartbeat_s,
            batch_max=batch_max,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(FakeSandbox(), FakeCandleSource(), RecordingPublisher(), tmp_path / "jobs")
