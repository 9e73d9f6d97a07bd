"""The job loop: jobs fetched in fair shares, grouped into batches that share a sandbox, one batch per
free slot, every job kept alive until it ends, cancellable, acked as soon as it ends, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from backtest_core.contracts import CancelRun, RunBacktestJob
from pydantic import ValidationError

from backtest_runner.batching import batch_key, group_by_key
from backtest_runner.executor import Disposition, JobExecutor
from backtest_runner.ports import JobMessage, JobSource
from backtest_runner.sandbox.outcome import KillReason, KillSwitch

log = logging.getLogger(__name__)

CANCEL_MEMORY_S = 600.0  # a cancel for a task not running here is remembered this long
RETRY_DELAY_S = 2.0  # nak delay after an unexpected error, so a poison job does not spin


class _Batch:
    """Jobs fetched together that may share a sandbox (batching.batch_key), with their messages.

    Every message not yet acked or naked is kept alive (in_progress) from the fetch on, also while the
    batch waits for a slot.
    """

    def __init__(self, entries: Sequence[tuple[RunBacktestJob, JobMessage]], heartbeat_s: float) -> None:
        self.jobs = [job for job, _ in entries]
        self._messages = {id(job): message for job, message in entries}
        self._keep_alive = asyncio.create_task(self._keep_alive_every(heartbeat_s))

    async def end(self, job: RunBacktestJob, disposition: Disposition, delay: float | None = None) -> None:
        """Ack (or nak) the job's message; the batch stops keeping it alive."""
        message = self._messages.pop(id(job), None)
        if not self._messages:
            self._keep_alive.cancel()
        if message is None:
            return
        if disposition is Disposition.ACK:
            await _quietly(message.ack())
        else:
            await _quietly(message.nak(delay=delay) if delay is not None else message.nak())

    async def hand_back(self, delay: float | None = None) -> None:
        """Nak every job not ended yet, so another runner (or this one, later) runs it."""
        for job in list(self.jobs):
            await self.end(job, Disposition.NAK, delay)

    async def _keep_alive_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            for message in list(self._messages.values()):
                await _quietly(message.in_progress())


class RunnerService:
    """Pull jobs while slots are free, run each batch with the executor, ack or nak each job, honour
    cancellations.

    One fetch takes up to `batch_max` jobs (a fair share of the queue, see JobSource.fetch); they are
    grouped by batch key, the first group runs in the free slot and the others wait in a local queue
    that the next free slots take before fetching again. `batch_max=1` runs one job per sandbox.
    """

    def __init__(
        self,
        *,
        source: JobSource,
        executor: JobExecutor,
        slots: int,
        fetch_timeout_s: float,
        heartbeat_interval_s: float,
        batch_max: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, was {slots}")
        if batch_max < 1:
            raise ValueError(f"batch_max must be >= 1, was {batch_max}")
        self._source = source
        self._executor = executor
        self._slots = asyncio.Semaphore(slots)
        self._fetch_timeout_s = fetch_timeout_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._batch_max = batch_max
        self._clock = clock
        self._running: dict[str, KillSwitch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: deque[_Batch] = deque()
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
            batch = self._ready.popleft() if self._ready else await self._next_batch()
            if batch is None:
                self._slots.release()
                continue
            if self._stopping.is_set():
                self._slots.release()
                await batch.hand_back()
                break
            task = asyncio.create_task(self._handle(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await self._hand_back_waiting()

    async def stop(self, grace_s: float) -> None:
        """Stop fetching and hand back the batches waiting for a slot; let running jobs finish for
        `grace_s` seconds, then kill them and nak their jobs."""
        self._stopping.set()
        await self._hand_back_waiting()
        if not self._tasks:
            return
        _, still_running = await asyncio.wait(set(self._tasks), timeout=grace_s)
        if still_running:
            log.warning("abandoning %d running batch(es) at shutdown", len(still_running))
            for switch in set(self._running.values()):
                switch.kill(KillReason.SHUTDOWN)
            await asyncio.wait(still_running)

    def cancel(self, message: CancelRun) -> bool:
        """Kill the container running this task if it runs here (return True); else remember the cancel."""
        self._forget_old_cancels()
        self._cancelled[message.task_id] = self._clock()
        switch = self._running.get(message.task_id)
        if switch is None:
            return False
        log.info("cancelling task %s", message.task_id)
        switch.kill(KillReason.CANCELLED)
        return True

    # The executor's Switches: one kill switch per container, registered under each task it runs.

    def arm(self, task_ids: Sequence[str]) -> KillSwitch:
        """Return a fresh kill switch for a container running these tasks (pulled at once if one of
        them was cancelled meanwhile)."""
        switch = KillSwitch()
        for task_id in task_ids:
            self._running[task_id] = switch
        if any(task_id in self._cancelled for task_id in task_ids):
            switch.kill(KillReason.CANCELLED)
        return switch

    def cancelled(self, task_id: str) -> bool:
        """Return True if this task was cancelled (recently enough to be remembered)."""
        return task_id in self._cancelled

    async def _next_batch(self) -> _Batch | None:
        """Fetch jobs; return the first batch of them and queue the others (None: nothing to run)."""
        try:
            messages = await self._source.fetch(self._batch_max, self._fetch_timeout_s)
        except Exception:
            if not self._stopping.is_set():  # at shutdown the connection closes under us
                log.exception("fetching jobs failed; retrying")
                await self._sleep_unless_stopping(1.0)
            return None
        entries = [entry for message in messages if (entry := await self._accept(message)) is not None]
        groups = group_by_key(entries, lambda entry: batch_key(entry[0]), self._batch_max)
        batches = [_Batch(group, self._heartbeat_interval_s) for group in groups]
        self._ready.extend(batches[1:])
        return batches[0] if batches else None

    async def _accept(self, message: JobMessage) -> tuple[RunBacktestJob, JobMessage] | None:
        """Return the message's job, or None after dropping a malformed or already cancelled one."""
        try:
            job = RunBacktestJob.model_validate_json(message.data)
        except ValidationError as exc:
            log.error("dropping a job message that is not a RunBacktestJob: %s", exc)
            await _quietly(message.term())
            return None
        if job.task_id in self._cancelled:
            log.info("task %s was cancelled before it started; skipping", job.task_id)
            await _quietly(message.ack())
            return None
        return job, message

    async def _handle(self, batch: _Batch) -> None:
        try:
            for job in [job for job in batch.jobs if job.task_id in self._cancelled]:
                log.info("task %s was cancelled while it waited; skipping", job.task_id)
                await batch.end(job, Disposition.ACK)
                batch.jobs.remove(job)

            async def done(job: RunBacktestJob, disposition: Disposition) -> None:
                self._running.pop(job.task_id, None)
                await batch.end(job, disposition)

            if batch.jobs:
                await self._executor.execute_batch(batch.jobs, self, done)
        except Exception:
            log.exception("unexpected error while running a batch; handing its jobs back")
            await batch.hand_back(delay=RETRY_DELAY_S)
        finally:
            for job in batch.jobs:
                self._running.pop(job.task_id, None)
            self._slots.release()

    async def _hand_back_waiting(self) -> None:
        while self._ready:
            await self._ready.popleft().hand_back()

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
