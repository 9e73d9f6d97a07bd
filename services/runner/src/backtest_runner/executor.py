"""Run one RunBacktestJob: load candles, write the job dir, run the sandbox, publish the reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from backtest_core.candles import Candles
from backtest_core.contracts import (
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
    SandboxJob,
    SandboxProgress,
)
from backtest_core.results import BacktestResult
from backtest_core.time_range import describe_range

from backtest_runner.job_dir import remove_job_dir, write_job_dir
from backtest_runner.ports import CandleSource, ReportPublisher, ReportTooLarge, Sandbox
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import SandboxRun
from backtest_runner.sandbox.outcome import (
    KillReason,
    KillSwitch,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    SandboxSucceeded,
)

log = logging.getLogger(__name__)


class Disposition(StrEnum):
    """What the job loop does with the job message afterwards."""

    ACK = "ack"  # a terminal report was published (or the task was cancelled)
    NAK = "nak"  # the runner is shutting down: hand the job to another runner


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(moment: datetime | None) -> int | None:
    """Return a timezone-aware datetime as int64 nanoseconds since the epoch (exact to the microsecond)."""
    if moment is None:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000


class JobExecutor:
    """The service layer of one job. Depends only on ports; owns the order of the reports."""

    def __init__(
        self,
        *,
        runner_id: str,
        candles: CandleSource,
        sandbox: Sandbox,
        publisher: ReportPublisher,
        work_dir: Path,
        equity_points_max: int,
        throttle_factory: Callable[[], ProgressThrottle],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner_id = runner_id
        self._candles = candles
        self._sandbox = sandbox
        self._publisher = publisher
        self._work_dir = work_dir
        self._equity_points_max = equity_points_max
        self._throttle_factory = throttle_factory
        self._clock = clock

    async def execute(self, job: RunBacktestJob, kill_switch: KillSwitch) -> Disposition:
        """Run the job to a terminal report; infrastructure faults become RunFailed(infrastructure)."""
        await self._publisher.publish(
            RunStarted(task_id=job.task_id, attempt=job.attempt, runner_id=self._runner_id)
        )
        try:
            candles = await self._load(job)
        except Exception as exc:  # the store is outside our control: any error is an infrastructure fault
            log.exception("loading candles for task %s failed", job.task_id)
            return await self._fail(job, FailureReason.INFRASTRUCTURE, f"loading candles failed: {exc!r}")
        empty = [symbol for symbol, bars in candles.items() if len(bars) == 0]
        if empty:
            return await self._fail(
                job,
                FailureReason.NO_DATA,
                f"no {job.config.interval} candles {describe_range(job.config.start, job.config.end)} "
                f"for {empty}; expected at least one bar per symbol",
            )
        try:
            job_dir = await asyncio.to_thread(write_job_dir, self._work_dir, self._sandbox_job(job), candles)
        except OSError as exc:
            return await self._fail(
                job, FailureReason.INFRASTRUCTURE, f"writing the job directory failed: {exc}"
            )
        try:
            return await self._run(job, job_dir, kill_switch)
        finally:
            await asyncio.to_thread(remove_job_dir, job_dir)

    async def _load(self, job: RunBacktestJob) -> dict[str, Candles]:
        start_ns, end_ns = _ns(job.config.start), _ns(job.config.end)
        interval = job.config.interval
        loaded: dict[str, Candles] = {}
        for symbol in job.config.symbols:
            loaded[symbol] = await asyncio.to_thread(self._candles.load, symbol, interval, start_ns, end_ns)
        return loaded

    def _sandbox_job(self, job: RunBacktestJob) -> SandboxJob:
        return SandboxJob(task_id=job.task_id, config=job.config, equity_points_max=self._equity_points_max)

    async def _run(self, job: RunBacktestJob, job_dir: Path, kill_switch: KillSwitch) -> Disposition:
        throttle = self._throttle_factory()
        pending: asyncio.Queue[SandboxProgress | None] = asyncio.Queue()

        def on_progress(progress: SandboxProgress) -> None:
            if throttle.admit(progress):
                pending.put_nowait(progress)

        async def publish_progress() -> None:
            while (progress := await pending.get()) is not None:
                await self._publisher.publish(
                    RunProgressed(
                        task_id=job.task_id,
                        attempt=job.attempt,
                        fraction=progress.fraction,
                        stage=progress.stage,
                    )
                )

        progress_task = asyncio.create_task(publish_progress())
        started = self._clock()
        try:
            outcome = await self._sandbox.run(SandboxRun(job.task_id, job_dir), on_progress, kill_switch)
        finally:
            await asyncio.sleep(0)  # let the last call_soon_threadsafe progress callbacks run
            pending.put_nowait(None)
            await progress_task
        duration_ms = round((self._clock() - started) * 1000)
        return await self._report(job, outcome, duration_ms)

    async def _report(self, job: RunBacktestJob, outcome: SandboxOutcome, duration_ms: int) -> Disposition:
        if isinstance(outcome, SandboxAborted):
            log.info("task %s aborted (%s)", job.task_id, outcome.reason)
            return Disposition.NAK if outcome.reason is KillReason.SHUTDOWN else Disposition.ACK
        if isinstance(outcome, SandboxSucceeded) and outcome.result.config != job.config:
            outcome = SandboxFailed(
                Failure(
                    reason=FailureReason.BAD_OUTPUT,
                    message="the sandbox returned a result for a different config than the job's",
                )
            )
        if isinstance(outcome, SandboxSucceeded):
            result = outcome.result
            report = RunSucceeded(
                task_id=job.task_id, attempt=job.attempt, result=result, duration_ms=duration_ms
            )
            try:
                await self._publisher.publish(report)
            except ReportTooLarge as exc:
                return await self._fail(job, FailureReason.OUTPUT_LIMIT, _too_large(result, exc))
            return Disposition.ACK
        await self._publisher.publish(
            RunFailed(task_id=job.task_id, attempt=job.attempt, failure=outcome.failure)
        )
        return Disposition.ACK

    async def _fail(self, job: RunBacktestJob, reason: FailureReason, message: str) -> Disposition:
        failure = Failure(reason=reason, message=message[:10_000])
        await self._publisher.publish(RunFailed(task_id=job.task_id, attempt=job.attempt, failure=failure))
        return Disposition.ACK


def _too_large(result: BacktestResult, exc: ReportTooLarge) -> str:
    """Say why a finished result cannot be delivered, and what the user can change."""
    mib = 1024 * 1024
    return (
        f"the backtest finished, but its result is {exc.size / mib:.1f} MiB as JSON "
        f"({len(result.trades):,} trades), over the platform's limit of {exc.limit / mib:.1f} MiB for one "
        "result; use fewer symbols, a shorter date range or a longer interval, or split it into several "
        "backtests"
    )
