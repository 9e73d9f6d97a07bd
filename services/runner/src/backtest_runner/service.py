"""The job loop: one job per free slot, kept alive while it runs, cancellable, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from backtest_core.contracts import CancelRun, RunBacktestJob
from pydantic import ValidationError

from backtest_runner.executor import Disposition, JobExecutor
from backtest_runner.ports import JobMessage, JobSource
from backtest_runner.sandbox.outcome import KillReason, KillSwitch

log = logging.getLogger(__name__)

CANCEL_MEMORY_S = 600.0  # a cancel for a task not running here is remembered this long
RETRY_DELAY_S = 2.0  # nak delay after an unexpected error, so a poison job does not spin


class RunnerService:
    """Pull jobs while slots are free, run each with the executor, ack or nak, honour cancellations."""

    def __init__(
        self,
        *,
        source: JobSource,
        executor: JobExecutor,
        slots: int,
        fetch_timeout_s: float,
        heartbeat_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, was {slots}")
        self._source = source
        self._executor = executor
        self._slots = asyncio.Semaphore(slots)
        self._fetch_timeout_s = fetch_timeout_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._clock = clock
        self._running: dict[str, KillSwitch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancelled: dict[str, float] = {}
        self._stopping = asyncio.Event()

    @property
    def running_task_ids(self) -> frozenset[str]:
        """Return the task ids whose jobs run here now."""
        return frozenset(self._running)

    async def run(self) -> None:
        """Fetch and start jobs until `stop()`; returns once fetching has stopped (jobs may still run)."""
        while not self._stopping.is_set():
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                break
            try:
                message = await self._source.fetch_one(self._fetch_timeout_s)
            except Exception:
                self._slots.release()
                if self._stopping.is_set():  # the connection is closing under us at shutdown
                    break
                log.exception("fetching a job failed; retrying")
                await self._sleep_unless_stopping(1.0)
                continue
            if message is None:
                self._slots.release()
                continue
            if self._stopping.is_set():
                self._slots.release()
                await _quietly(message.nak())
                break
            task = asyncio.create_task(self._handle(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self, grace_s: float) -> None:
        """Stop fetching; let running jobs finish for `grace_s` seconds, then kill them and nak their jobs."""
        self._stopping.set()
        if not self._tasks:
            return
        _, still_running = await asyncio.wait(set(self._tasks), timeout=grace_s)
        if still_running:
            log.warning("abandoning %d running job(s) at shutdown", len(still_running))
            for switch in list(self._running.values()):
                switch.kill(KillReason.SHUTDOWN)
            await asyncio.wait(still_running)

    def cancel(self, message: CancelRun) -> bool:
        """Kill this task's container if it runs here (return True); else remember the cancel."""
        self._forget_old_cancels()
        self._cancelled[message.task_id] = self._clock()
        switch = self._running.get(message.task_id)
        if switch is None:
            return False
        log.info("cancelling task %s", message.task_id)
        switch.kill(KillReason.CANCELLED)
        return True

    async def _handle(self, message: JobMessage) -> None:
        try:
            try:
                job = RunBacktestJob.model_validate_json(message.data)
            except ValidationError as exc:
                log.error("dropping a job message that is not a RunBacktestJob: %s", exc)
                await message.term()
                return
            if job.task_id in self._cancelled:
                log.info("task %s was cancelled before it started; skipping", job.task_id)
                await message.ack()
                return
            await self._run_job(job, message)
        except Exception:
            log.exception("unexpected error while handling a job; handing it back")
            await _quietly(message.nak(delay=RETRY_DELAY_S))
        finally:
            self._slots.release()

    async def _run_job(self, job: RunBacktestJob, message: JobMessage) -> None:
        switch = KillSwitch()
        self._running[job.task_id] = switch
        heartbeat = asyncio.create_task(self._keep_alive(message))
        try:
            disposition = await self._executor.execute(job, switch)
        finally:
            heartbeat.cancel()
            self._running.pop(job.task_id, None)
        if disposition is Disposition.ACK:
            await message.ack()
        else:
            await message.nak()

    async def _keep_alive(self, message: JobMessage) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval_s)
            await _quietly(message.in_progress())

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _forget_old_cancels(self) -> None:
        horizon = self._clock() - CANCEL_MEMORY_S
        for task_id in [t for t, at in self._cancelled.items() if at < horizon]:
            del self._cancelled[task_id]


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.warning("broker call failed: %r", exc)
