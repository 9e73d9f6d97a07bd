"""The scheduler's admission service: runs admission.py decisions on the stored state, publishes jobs.

A task's job reaches the runners' work queue only once admission lets it run; when a task ends, its
slot goes to the next user's waiting job. The state lives in one compare-and-set entry (AdmissionStore),
so a restart loses no waiting job; a decision that lost a race with another scheduler is re-made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from backtest_core.contracts import RunBacktestJob

from backtest_scheduler import admission
from backtest_scheduler.admission import AdmissionLimits, AdmissionPlan, AdmissionState, Ticket
from backtest_scheduler.decisions import Plan
from backtest_scheduler.errors import SchedulerError, TaskConflict
from backtest_scheduler.ports import AdmissionStore, EventBus, TaskStore
from backtest_scheduler.state_machine import is_terminal

log = logging.getLogger(__name__)

Step = Callable[[AdmissionState], AdmissionPlan]


def _end(state: AdmissionState, *, key: str, limits: AdmissionLimits) -> AdmissionPlan:
    return admission.end(state, key, limits)


def _confirm(state: AdmissionState, *, ticket: Ticket) -> AdmissionPlan:
    return AdmissionPlan(admission.confirm(state, ticket.key, ticket.attempt), ())


class AdmissionGate:
    """Holds jobs back while their user or the platform is at its limit; releases them round robin."""

    def __init__(
        self,
        *,
        slots: AdmissionStore,
        tasks: TaskStore,
        bus: EventBus,
        limits: AdmissionLimits,
        max_races: int = 50,
    ) -> None:
        self._slots = slots
        self._tasks = tasks
        self._bus = bus
        self._limits = limits
        self._max_races = max_races
        self._lock = asyncio.Lock()

    async def settle(self, plan: Plan) -> None:
        """Queue the plan's job through admission; free the slot of a task the plan ended."""
        if plan.job is not None:
            await self.offer(plan.job)
        if plan.record is not None and is_terminal(plan.record.state):
            await self.end(plan.record.task_id)

    async def offer(self, job: RunBacktestJob) -> None:
        """Admit the job now if its user and the platform have a free slot, else keep it waiting."""
        limits = self._limits
        plan = await self._decide(lambda s: admission.offer(s, job.task_id, job.user_id, job.attempt, limits))
        if any(t.key == job.task_id for t in plan.state.waiting):
            behind = plan.state.queued_behind(job.task_id)
            log.info(
                "task %s waits for a runner slot, queued behind %d of its user's jobs", job.task_id, behind
            )
        await self._dispatch(plan.dispatch)

    async def end(self, task_id: str) -> None:
        """Drop the task's ticket (it ended) and publish the jobs admitted in its place."""
        plan = await self._decide(lambda s: admission.end(s, task_id, self._limits))
        await self._dispatch(plan.dispatch)

    async def resume(self) -> int:
        """After a restart: drop tickets of tasks that ended, publish unconfirmed jobs; return the count."""
        state, _ = await self._slots.load()
        gone = [t.key for t in (*state.in_flight, *state.waiting) if not await self._runnable(t.key)]
        for key in gone:
            await self.end(key)
        state, _ = await self._slots.load()
        await self._dispatch(tuple(t for t in state.in_flight if not t.dispatched))
        return len(gone)

    async def _runnable(self, task_id: str) -> bool:
        stored = await self._tasks.get(task_id)
        return stored is not None and not is_terminal(stored.record.state)

    async def _decide(self, step: Step) -> AdmissionPlan:
        """Apply `step` to the stored state with compare-and-set, re-reading after a lost race."""
        async with self._lock:
            for _ in range(self._max_races):
                state, revision = await self._slots.load()
                plan = step(state)
                if plan.state == state:
                    return plan
                try:
                    await self._slots.save(plan.state, revision)
                except TaskConflict:
                    continue
                return plan
        raise SchedulerError(f"admission state kept changing under this scheduler ({self._max_races} tries)")

    async def _dispatch(self, tickets: tuple[Ticket, ...]) -> None:
        """Publish each admitted ticket's job and confirm it; the ticket of an ended task frees its slot."""
        pending = list(tickets)
        seen: set[tuple[str, int]] = set()
        while pending:
            ticket = pending.pop(0)
            if (ticket.key, ticket.attempt) in seen:
                continue
            seen.add((ticket.key, ticket.attempt))
            stored = await self._tasks.get(ticket.key)
            if stored is None or is_terminal(stored.record.state):
                plan = await self._decide(partial(_end, key=ticket.key, limits=self._limits))
                pending.extend(plan.dispatch)
                continue
            if stored.record.requeue_at is None:  # a retry waiting for its back-off is queued by requeue
                await self._bus.enqueue_job(stored.record.job())
            await self._decide(partial(_confirm, ticket=ticket))
