"""Run one RunBacktestJob: load candles, write the job dir, run the sandbox, publish the reports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from backtest_core.contracts import (
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
    SandboxBatch,
    SandboxJob,
    SandboxProgress,
)
from backtest_core.model.candles import Candles
from backtest_core.model.results import TaskResult, TrialsResult
from backtest_core.model.time_range import describe_range, epoch_ns

from backtest_runner.batching import batch_key
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
    failed,
    final_line_outcome,
)
from backtest_runner.sandbox.output import ParsedLine

log = logging.getLogger(__name__)


class Disposition(StrEnum):
    """What the job loop does with the job message afterwards."""

    ACK = "ack"  # a terminal report was published (or the task was cancelled)
    NAK = "nak"  # the runner is shutting down: hand the job to another runner


JobDone = Callable[[RunBacktestJob, Disposition], Awaitable[None]]
# Why a batch container may end that belongs to the job running then, not to the batch as a whole.
_RUNNING_JOBS_OWN = frozenset({FailureReason.TIMEOUT, FailureReason.OUTPUT_LIMIT})


class Switches(Protocol):
    """The job loop's kill switches: one per container, found by the task ids it runs."""

    def arm(self, task_ids: Sequence[str]) -> KillSwitch:
        """Return a fresh switch that a cancel of any of these tasks (or shutdown) pulls."""
        ...

    def cancelled(self, task_id: str) -> bool:
        """Return True if this task was cancelled."""
        ...


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else epoch_ns(moment)


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
        """Run one job to a terminal report; infrastructure faults become RunFailed(infrastructure)."""
        ended: dict[str, Disposition] = {}

        async def done(finished: RunBacktestJob, disposition: Disposition) -> None:
            ended[finished.task_id] = disposition

        await self.execute_batch([job], _OneSwitch(kill_switch), done)
        return ended[job.task_id]

    async def execute_batch(
        self, jobs: Sequence[RunBacktestJob], switches: Switches, on_done: JobDone
    ) -> None:
        """Run jobs of one batch key (batching.batch_key) with their candles loaded once, in as few
        sandboxes as their faults allow; `on_done` is awaited once per job, as soon as it has ended.

        A batch's jobs run in order in one container; each job is reported when its final line arrives.
        If the container ends before every job did: shutdown hands the rest back; a cancel ends the
        cancelled jobs and runs the others again; a timeout or output cap is the running job's; an
        infrastructure fault is every remaining job's; any other end (out of memory, a crash, bad output)
        runs the job that was running alone, where its outcome is its own, and the rest again.
        """
        for job in jobs:
            await self._publisher.publish(
                RunStarted(task_id=job.task_id, attempt=job.attempt, runner_id=self._runner_id)
            )
        try:
            candles = await self._load(jobs)
        except Exception as exc:  # the store is outside our control: any error is an infrastructure fault
            log.exception("loading candles for task(s) %s failed", [job.task_id for job in jobs])
            for job in jobs:
                await on_done(
                    job,
                    await self._fail(job, FailureReason.INFRASTRUCTURE, f"loading candles failed: {exc!r}"),
                )
            return
        runnable: list[RunBacktestJob] = []
        for job in jobs:
            empty = [symbol for symbol in job.config.symbols if len(candles[symbol]) == 0]
            if empty:
                message = (
                    f"no {job.config.interval} candles {describe_range(job.config.start, job.config.end)} "
                    f"for {empty}; expected at least one bar per symbol"
                )
                await on_done(job, await self._fail(job, FailureReason.NO_DATA, message))
            else:
                runnable.append(job)
        if runnable:  # first in one batch sandbox (a warm one of the key, if any), even a job alone
            runnable = await self._run_batch(runnable, candles, switches, on_done)
        while len(runnable) > 1:
            runnable = await self._run_batch(runnable, candles, switches, on_done)
        for job in runnable:
            await on_done(job, await self._run_alone(job, candles, switches.arm([job.task_id])))

    async def _load(self, jobs: Sequence[RunBacktestJob]) -> dict[str, Candles]:
        """Load every symbol the jobs name once (a batch shares interval, start and end)."""
        config = jobs[0].config
        start_ns, end_ns = _ns(config.start), _ns(config.end)
        loaded: dict[str, Candles] = {}
        for symbol in dict.fromkeys(symbol for job in jobs for symbol in job.config.symbols):
            loaded[symbol] = await asyncio.to_thread(
                self._candles.load, symbol, config.interval, start_ns, end_ns
            )
        return loaded

    def _sandbox_job(self, job: RunBacktestJob) -> SandboxJob:
        return SandboxJob(
            task_id=job.task_id,
            config=job.config,
            equity_points_max=self._equity_points_max,
            trials=job.trials,
        )

    async def _run_alone(
        self, job: RunBacktestJob, candles: Mapping[str, Candles], kill_switch: KillSwitch
    ) -> Disposition:
        own = {symbol: candles[symbol] for symbol in job.config.symbols}
        try:
            job_dir = await asyncio.to_thread(write_job_dir, self._work_dir, self._sandbox_job(job), own)
        except OSError as exc:
            return await self._fail(
                job, FailureReason.INFRASTRUCTURE, f"writing the job directory failed: {exc}"
            )
        try:
            return await self._run(job, job_dir, kill_switch)
        finally:
            await asyncio.to_thread(remove_job_dir, job_dir)

    async def _run(self, job: RunBacktestJob, job_dir: Path, kill_switch: KillSwitch) -> Disposition:
        throttle = self._throttle_factory()
        pending: asyncio.Queue[SandboxProgress | None] = asyncio.Queue()

        def on_progress(progress: SandboxProgress) -> None:
            if throttle.admit(progress):
                pending.put_nowait(progress)

        async def publish_progress() -> None:
            while (progress := await pending.get()) is not None:
                await self._progressed(job, progress)

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

    async def _run_batch(
        self, jobs: list[RunBacktestJob], candles: Mapping[str, Candles], switches: Switches, on_done: JobDone
    ) -> list[RunBacktestJob]:
        """Run `jobs` in one sandbox, reporting each as it ends; return the jobs to run again."""
        batch = SandboxBatch(jobs=tuple(self._sandbox_job(job) for job in jobs))
        own = {symbol: candles[symbol] for job in jobs for symbol in job.config.symbols}
        key = batch_key(jobs[0])
        try:
            job_dir = await asyncio.to_thread(write_job_dir, self._work_dir, batch, own)
        except OSError as exc:
            for job in jobs:
                await on_done(
                    job,
                    await self._fail(
                        job, FailureReason.INFRASTRUCTURE, f"writing the job directory failed: {exc}"
                    ),
                )
            return []
        tracker = _BatchTracker(
            jobs, on_done, self._report, self._progressed, self._throttle_factory, self._clock
        )
        consumer = asyncio.create_task(tracker.consume())
        try:
            end = await self._sandbox.run_batch(
                SandboxRun(jobs[0].task_id, job_dir, warm_key=key),
                len(jobs),
                tracker.lines.put_nowait,
                switches.arm([job.task_id for job in jobs]),
            )
        finally:
            await asyncio.sleep(0)  # let the last call_soon_threadsafe line callbacks run
            tracker.lines.put_nowait(None)
            await consumer
            await asyncio.to_thread(remove_job_dir, job_dir)
        rest = jobs[tracker.finished :]
        if end is None or not rest:
            return []
        if len(jobs) == 1:  # alone in its sandbox: the container's end is the job's own outcome
            await on_done(jobs[0], await self._report(jobs[0], end, tracker.running_ms()))
            return []
        return await self._after_batch_end(end, rest, tracker.running_ms(), candles, switches, on_done)

    async def _after_batch_end(
        self,
        end: SandboxOutcome,
        rest: list[RunBacktestJob],
        running_ms: int,
        candles: Mapping[str, Candles],
        switches: Switches,
        on_done: JobDone,
    ) -> list[RunBacktestJob]:
        """Decide what the early end of a batch container means for its jobs without a final line."""
        running, later = rest[0], rest[1:]
        if isinstance(end, SandboxAborted):
            if end.reason is KillReason.SHUTDOWN:
                for job in rest:
                    await on_done(job, Disposition.NAK)
                return []
            again = []
            for job in rest:
                if switches.cancelled(job.task_id):
                    log.info("task %s cancelled while batched", job.task_id)
                    await on_done(job, Disposition.ACK)
                else:
                    again.append(job)
            return again
        if isinstance(end, SandboxFailed) and end.failure.reason is FailureReason.INFRASTRUCTURE:
            for job in rest:
                await on_done(job, await self._report(job, end, running_ms))
            return []
        if isinstance(end, SandboxFailed) and end.failure.reason in _RUNNING_JOBS_OWN:
            await on_done(running, await self._report(running, end, running_ms))
            return later
        log.info("batch ended early (%s) while task %s ran: running it alone", end, running.task_id)
        await on_done(running, await self._run_alone(running, candles, switches.arm([running.task_id])))
        return later

    async def _progressed(self, job: RunBacktestJob, progress: SandboxProgress) -> None:
        """Publish a progress report; progress is informative, so a failed publish never fails the run."""
        report = RunProgressed(
            task_id=job.task_id, attempt=job.attempt, fraction=progress.fraction, stage=progress.stage
        )
        try:
            await self._publisher.publish(report)
        except Exception as exc:
            log.warning("dropping a progress report of task %s: %r", job.task_id, exc)

    async def _report(self, job: RunBacktestJob, outcome: SandboxOutcome, duration_ms: int) -> Disposition:
        if isinstance(outcome, SandboxAborted):
            log.info("task %s aborted (%s)", job.task_id, outcome.reason)
            return Disposition.NAK if outcome.reason is KillReason.SHUTDOWN else Disposition.ACK
        if isinstance(outcome, SandboxSucceeded) and not _answers(job, outcome.result):
            outcome = SandboxFailed(
                Failure(
                    reason=FailureReason.BAD_OUTPUT,
                    message="the sandbox returned a result for a different config (or trials) than the job's",
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


class _OneSwitch:
    """Switches for one job that already has its kill switch."""

    def __init__(self, kill_switch: KillSwitch) -> None:
        self._kill_switch = kill_switch

    def arm(self, task_ids: Sequence[str]) -> KillSwitch:
        return self._kill_switch

    def cancelled(self, task_id: str) -> bool:
        return self._kill_switch.reason is KillReason.CANCELLED


class _BatchTracker:
    """Follow a batch container's lines: the n-th final line ends the n-th job, which is reported then."""

    def __init__(
        self,
        jobs: Sequence[RunBacktestJob],
        on_done: JobDone,
        report: Callable[[RunBacktestJob, SandboxOutcome, int], Awaitable[Disposition]],
        progressed: Callable[[RunBacktestJob, SandboxProgress], Awaitable[None]],
        throttle_factory: Callable[[], ProgressThrottle],
        clock: Callable[[], float],
    ) -> None:
        self.lines: asyncio.Queue[ParsedLine | None] = asyncio.Queue()
        self.finished = 0
        self._jobs = jobs
        self._on_done = on_done
        self._report = report
        self._progressed = progressed
        self._throttle_factory = throttle_factory
        self._clock = clock
        self._throttle = throttle_factory()
        self._since = clock()

    def running_ms(self) -> int:
        """Return how long the job running now has been running, ms."""
        return round((self._clock() - self._since) * 1000)

    async def consume(self) -> None:
        """Report the lines as they come, until None."""
        while (line := await self.lines.get()) is not None:
            if self.finished >= len(self._jobs):
                continue  # after the last job's final line: the sandbox's accountant counts it
            job = self._jobs[self.finished]
            if isinstance(line, SandboxProgress):
                if self._throttle.admit(line):
                    await self._progressed(job, line)
                continue
            duration_ms = self.running_ms()
            self.finished += 1
            self._throttle = self._throttle_factory()
            self._since = self._clock()
            if line.task_id == job.task_id:
                outcome: SandboxOutcome = final_line_outcome(line)
            else:
                outcome = failed(
                    FailureReason.BAD_OUTPUT,
                    f"the sandbox's final line number {self.finished} names task {line.task_id!r}, "
                    f"expected {job.task_id!r}",
                )
            await self._on_done(job, await self._report(job, outcome, duration_ms))


def _answers(job: RunBacktestJob, result: TaskResult) -> bool:
    """Whether the result is the job's: a backtest's of its config, or a chunk's of its trials in order."""
    if isinstance(result, TrialsResult):
        return [o.trial for o in result.outcomes] == [t.trial for t in job.trials]
    return not job.trials and result.config == job.config


def _too_large(result: TaskResult, exc: ReportTooLarge) -> str:
    """Say why a finished result cannot be delivered, and what the user can change."""
    mib = 1024 * 1024
    size = (
        f"{len(result.outcomes):,} trials"
        if isinstance(result, TrialsResult)
        else f"{len(result.trades):,} trades"
    )
    return (
        f"the backtest finished, but its result is {exc.size / mib:.1f} MiB as JSON "
        f"({size}), over the platform's limit of {exc.limit / mib:.1f} MiB for one "
        "result; use fewer symbols, a shorter date range or a longer interval, or split it into several "
        "backtests"
    )
