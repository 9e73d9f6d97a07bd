"""The scheduler's handlers on FastStream's in-memory NATS broker, with fakes behind the ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from backtest_core.contracts import (
    BacktestEvent,
    CancelRun,
    DeadLetteredJob,
    RunBacktestJob,
    Stream,
    Subject,
    utc_now,
)
from backtest_scheduler.adapters.asyncio_timer import AsyncioTimer
from backtest_scheduler.adapters.nats_event_bus import NatsEventBus
from backtest_scheduler.admission import AdmissionLimits
from backtest_scheduler.admission_gate import AdmissionGate
from backtest_scheduler.handlers import build_router
from backtest_scheduler.service import SchedulerService
from backtest_scheduler.task import RetryPolicy
from faststream.nats import JStream, NatsBroker, TestNatsBroker

MAX_ATTEMPTS = 3


@dataclass
class Harness:
    """A running in-memory scheduler and what it published."""

    broker: NatsBroker
    service: SchedulerService
    timer: AsyncioTimer
    events: list[BacktestEvent] = field(default_factory=list)
    jobs: list[RunBacktestJob] = field(default_factory=list)
    dead: list[DeadLetteredJob] = field(default_factory=list)
    cancels: list[CancelRun] = field(default_factory=list)

    def events_of(self, task_id: str) -> list[BacktestEvent]:
        return [e for e in self.events if e.task_id == task_id]

    async def wait_for_jobs(self, count: int) -> None:
        """Wait until `count` jobs were queued (retries are queued by a timer)."""
        async with asyncio.timeout(10):
            while len(self.jobs) < count:
                await asyncio.sleep(0.005)


@pytest.fixture
def admission_limits() -> AdmissionLimits | None:
    """The admission gate's limits; None (the default here): every job goes straight to the work queue."""
    return None


@pytest.fixture
async def harness(
    store, cache, fingerprints, dead_jobs, admission_store, admission_limits
) -> AsyncIterator[Harness]:  # type: ignore[no-untyped-def]
    broker = NatsBroker()
    timer = AsyncioTimer()
    bus = NatsEventBus(broker)
    gate = None
    if admission_limits is not None:
        gate = AdmissionGate(slots=admission_store, tasks=store, bus=bus, limits=admission_limits)
    service = SchedulerService(
        store=store,
        cache=cache,
        fingerprints=fingerprints,
        bus=bus,
        dead_jobs=dead_jobs,
        timer=timer,
        policy=RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay_s=0.001, max_delay_s=0.01),
        clock=utc_now,
        admission=gate,
    )
    broker.include_router(build_router(service, redelivery_delay_s=0.0))
    h = Harness(broker, service, timer)

    @broker.subscriber(Subject.EVENTS_ALL, stream=JStream(Stream.EVENTS.value, declare=False))
    async def collect_event(event: BacktestEvent) -> None:
        h.events.append(event)

    @broker.subscriber(Subject.JOB_RUN, stream=JStream(Stream.JOBS.value, declare=False))
    async def collect_job(job: RunBacktestJob) -> None:
        h.jobs.append(job)

    @broker.subscriber(Subject.DEAD_JOB, stream=JStream(Stream.DEAD.value, declare=False))
    async def collect_dead(dead: DeadLetteredJob) -> None:
        h.dead.append(dead)

    @broker.subscriber(Subject.CANCEL_RUN)
    async def collect_cancel(cancel: CancelRun) -> None:
        h.cancels.append(cancel)

    async with TestNatsBroker(broker):
        yield h
    await timer.close()
