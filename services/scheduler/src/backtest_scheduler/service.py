"""The scheduler's service layer: loads the task, asks decisions.py what to do, carries it out."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from backtest_core.build import engine_build_id
from backtest_core.contracts import (
    CancelBacktest,
    Failure,
    FailureReason,
    RunReport,
    SubmitBacktest,
    TaskState,
)
from backtest_core.contracts.cache_key import DataFingerprints, compute_cache_key, config_fingerprints
from backtest_core.errors import DataError
from pydantic import ValidationError

from backtest_scheduler import decisions
from backtest_scheduler.admission_gate import AdmissionGate
from backtest_scheduler.decisions import Plan
from backtest_scheduler.errors import TaskConflict
from backtest_scheduler.ports import DeadJobs, EventBus, ResultCache, TaskStore, Timer
from backtest_scheduler.task import Outbox, RetryPolicy, StoredTask, TaskRecord
from backtest_scheduler.unreadable import failure_of, sender_of

log = logging.getLogger(__name__)

OUTBOX_RACES = 10  # reads of a task whose outbox other schedulers keep publishing, before giving up


class SchedulerService:
    """Accepts, caches, tracks, retries and dead-letters backtests. One instance per process."""

    def __init__(
        self,
        *,
        store: TaskStore,
        cache: ResultCache,
        fingerprints: DataFingerprints,
        bus: EventBus,
        dead_jobs: DeadJobs,
        timer: Timer,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
        engine: str | None = None,
        admission: AdmissionGate | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._fingerprints = fingerprints
        self._bus = bus
        self._dead_jobs = dead_jobs
        self._timer = timer
        self._policy = policy
        self._clock = clock
        self._engine = engine if engine is not None else engine_build_id()
        self._admission = admission  # None: every job goes straight to the work queue
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: defaultdict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def _locked(self, task_id: str) -> AsyncIterator[None]:
        """Serialise the handling of one task's messages in this process (different tasks run freely)."""
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        self._users[task_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[task_id] -= 1
            if self._users[task_id] == 0:  # nobody holds or waits: forget the lock
                del self._users[task_id]
                del self._locks[task_id]

    async def cache_key(self, command: SubmitBacktest) -> str:
        """Return the cache key of a submission; DataError if a symbol has no candles in range."""
        prints = await config_fingerprints(command.config, self._fingerprints)
        return compute_cache_key(command.config, prints, self._engine)

    async def submit(self, command: SubmitBacktest) -> None:
        """Accept a backtest: answer from the cache or queue its first job."""
        async with self._locked(command.task_id):
            stored = await self._load(command.task_id)
            existing = stored.record if stored else None
            if existing is not None:
                plan = decisions.plan_submit(command, existing, "", None, self._clock())
                if self._admission is not None and existing.state is TaskState.PENDING:
                    await self._admission.offer(existing.job())  # a crash may have come before the offer
                return await self._execute(plan, stored.revision if stored else None)
            if command.trials:
                # A chunk's trials are the sweeper's to reuse, by their own keys (no `backtests` document
                # holds a chunk's result): a chunk has no cache key, and its data is checked by its run.
                return await self._execute(
                    decisions.plan_submit(command, None, "", None, self._clock()), None
                )
            try:
                key = await self.cache_key(command)
            except DataError as error:
                failure = Failure(reason=FailureReason.NO_DATA, message=str(error)[:10_000])
                plan = decisions.plan_rejected_submit(command, None, failure, self._clock())
                return await self._execute(plan, None)
            cached = await self._cache.find_success(key)
            await self._execute(decisions.plan_submit(command, None, key, cached, self._clock()), None)

    async def cancel(self, command: CancelBacktest) -> None:
        """Cancel a backtest that has not finished."""
        async with self._locked(command.task_id):
            stored = await self._load(command.task_id)
            if stored is None:  # before its submission: the submission, when it comes, is cancelled
                return await self._execute(decisions.plan_cancel_unknown(command, self._clock()), None)
            await self._execute(decisions.plan_cancel(stored.record, self._clock()), stored.revision)

    async def unreadable_command(self, raw: bytes, error: ValidationError) -> None:
        """End the task of a submission that cannot be read as FAILURE naming the invalid fields."""
        sender = sender_of(raw)
        if sender.kind != "submit" or sender.task_id is None or sender.user_id is None:
            log.error("dropped an unreadable command that names no task to end (%s): %s", sender, error)
            return
        failure = failure_of("the submission", error, FailureReason.INVALID_CONFIG)
        async with self._locked(sender.task_id):
            stored = await self._load(sender.task_id)
            plan = decisions.plan_unreadable_submit(
                sender.task_id, sender.user_id, stored.record if stored else None, failure, self._clock()
            )
            await self._execute(plan, stored.revision if stored else None)

    async def unreadable_report(self, raw: bytes, error: ValidationError) -> None:
        """End the task of a run report that cannot be read as FAILURE naming the invalid fields."""
        sender = sender_of(raw)
        if sender.task_id is None:
            log.error("dropped an unreadable run report that names no task (%s): %s", sender, error)
            return
        failure = failure_of("the runner's report", error, FailureReason.BAD_OUTPUT)
        async with self._locked(sender.task_id):
            stored = await self._load(sender.task_id)
            plan = decisions.plan_unreadable_report(
                stored.record if stored else None, sender.attempt, failure, self._clock()
            )
            await self._execute(plan, stored.revision if stored else None)

    async def report(self, report: RunReport) -> None:
        """Turn a runner's report into the task's next event."""
        async with self._locked(report.task_id):
            stored = await self._load(report.task_id)
            plan = decisions.plan_report(
                stored.record if stored else None, report, self._policy, self._clock()
            )
            await self._execute(plan, stored.revision if stored else None)

    async def requeue(self, task_id: str) -> None:
        """Queue the next attempt of a task whose back-off has passed."""
        async with self._locked(task_id):
            stored = await self._load(task_id)
            plan = decisions.plan_requeue(stored.record if stored else None, self._clock())
            await self._execute(plan, stored.revision if stored else None)

    async def max_deliveries(self, stream_seq: int, deliveries: int) -> None:
        """Dead-letter the job at `stream_seq` of the jobs stream that ran out of deliveries.

        The job leaves the stream only once its task's FAILURE is stored and published: if this fails
        midway (a NATS leader election), the redelivered advisory finds the job again, and the plan
        ignores a task that is terminal already.
        """
        job = await self._dead_jobs.read(stream_seq)
        if job is None:
            log.warning("dead job at jobs stream seq %d is gone already", stream_seq)
            return
        async with self._locked(job.task_id):
            stored = await self._load(job.task_id)
            plan = decisions.plan_max_deliveries(
                stored.record if stored else None, job, deliveries, self._clock()
            )
            await self._execute(plan, stored.revision if stored else None)
        await self._dead_jobs.remove(stream_seq)

    async def resume_retries(self) -> int:
        """Restart the back-off timers of tasks waiting in RETRY (after a restart); return how many."""
        waiting = await self._store.waiting_for_requeue()
        now = self._clock()
        for record in waiting:
            due = record.requeue_at or now
            delay_s = max(0.0, (due - now).total_seconds())
            self._schedule_requeue(record.task_id, delay_s)
        return len(waiting)

    def _schedule_requeue(self, task_id: str, delay_s: float) -> None:
        async def fire() -> None:
            try:
                await self.requeue(task_id)
            except Exception:
                log.exception("requeue of task %s failed; trying again in %.1f s", task_id, 1.0)
                self._timer.call_later(1.0, fire)

        self._timer.call_later(delay_s, fire)

    async def resume_owed(self) -> int:
        """Publish what dead schedulers stored but did not publish (after a restart); return how many."""
        task_ids = await self._store.owing()
        for task_id in task_ids:
            async with self._locked(task_id):
                await self._load(task_id)
        return len(task_ids)

    async def _load(self, task_id: str) -> StoredTask | None:
        """Return the task with nothing left to publish: a stored outbox is published and cleared first."""
        for _ in range(OUTBOX_RACES):
            stored = await self._store.get(task_id)
            if stored is None or stored.record.outbox is None:
                return stored
            log.warning("task %s: publishing the outbox of seq %d again", task_id, stored.record.seq)
            try:
                revision = await self._deliver(stored.record, stored.revision)
            except TaskConflict:
                continue  # another scheduler published and moved on: read again
            return StoredTask(stored.record.model_copy(update={"outbox": None}), revision)
        raise TaskConflict(
            f"task {task_id} kept changing while its outbox was published ({OUTBOX_RACES} reads)"
        )

    async def _execute(self, plan: Plan, revision: int | None) -> None:
        if plan.ignored is not None:
            log.info("ignored: %s", plan.ignored)
            return
        owed = plan.owing()
        if owed is None:
            return
        if plan.created:  # store first: only a stored transition is ever published
            revision = await self._store.create(owed)
        elif revision is None:
            return
        else:
            revision = await self._store.update(owed, revision)
        try:
            await self._deliver(owed, revision)
        except TaskConflict:
            log.info("task %s: another scheduler published the outbox of seq %d", owed.task_id, owed.seq)
        if plan.requeue_after_s is not None:
            self._schedule_requeue(owed.task_id, plan.requeue_after_s)

    async def _deliver(self, record: TaskRecord, revision: int) -> int:
        """Publish the record's outbox (copies keep their ids), clear it, return the revision."""
        outbox = record.outbox or Outbox()
        for event in outbox.events:
            await self._bus.publish_event(event)
        if outbox.job is not None and self._admission is None:
            await self._bus.enqueue_job(outbox.job)
        if outbox.dead_letter is not None:
            await self._bus.publish_dead_letter(outbox.dead_letter)
        if outbox.cancel_run is not None:
            await self._bus.broadcast_cancel(outbox.cancel_run)
        if self._admission is not None:  # after the store: a released job's record must exist
            await self._admission.settle(Plan(record=record, job=outbox.job))
        return await self._store.update(record.model_copy(update={"outbox": None}), revision)
