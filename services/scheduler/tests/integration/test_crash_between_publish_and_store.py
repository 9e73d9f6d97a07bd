"""A scheduler that dies in the middle of carrying out a plan, on real NATS JetStream (KV + streams).

Each run kills the scheduler at a random step (a store write or a publish) of one run report's plan,
then a fresh scheduler on the same bucket and streams starts up and gets the killed report again at a
random place among the reports that follow (JetStream redelivers it after its ack wait). Whatever the
step, the task ends with exactly one SUCCESS event carrying the result, and that event has the highest
`seq` of the task (the results writer keeps the highest `seq`), so no client waits forever.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from backtest_core.contracts import (
    BacktestEvent,
    BacktestSucceeded,
    RunProgressed,
    RunReport,
    RunStarted,
    RunSucceeded,
    Stream,
    Subject,
    TaskState,
    new_id,
    utc_now,
)
from backtest_messaging import declare_streams
from backtest_scheduler.adapters.asyncio_timer import AsyncioTimer
from backtest_scheduler.adapters.nats_event_bus import NatsEventBus
from backtest_scheduler.adapters.nats_kv_task_store import NatsKvTaskStore
from backtest_scheduler.service import SchedulerService
from backtest_scheduler.task import RetryPolicy
from backtest_testinfra import make_backtest_result
from faststream.nats import NatsBroker
from nats.js import JetStreamContext
from pydantic import TypeAdapter

from ..conftest import FakeDeadJobs, FakeFingerprints, FakeResultCache, make_submit

pytestmark = pytest.mark.integration

RUNS = 100
EVENTS: TypeAdapter[BacktestEvent] = TypeAdapter(BacktestEvent)


class Killed(Exception):
    """The scheduler process died here."""


class Fuse:
    """Counts the scheduler's effects (store writes and publishes) and kills it at step `at` when armed."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.steps = 0

    def arm(self, at: int) -> None:
        self.at, self.steps = at, 0

    def step(self) -> None:
        if self.at is None:
            return
        self.steps += 1
        if self.steps == self.at:
            self.at = None
            raise Killed(f"killed at step {self.steps}")


class DyingStore:
    """The real KV store; a write at the fuse's step never happens (the process died just before)."""

    def __init__(self, inner: NatsKvTaskStore, fuse: Fuse) -> None:
        self._inner, self._fuse = inner, fuse

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, *args: Any) -> Any:
        self._fuse.step()
        return await self._inner.create(*args)

    async def update(self, *args: Any) -> Any:
        self._fuse.step()
        return await self._inner.update(*args)


class DyingBus:
    """The real event bus; a publish at the fuse's step never happens (the process died just before)."""

    def __init__(self, inner: NatsEventBus, fuse: Fuse) -> None:
        self._inner, self._fuse = inner, fuse

    async def publish_event(self, event: Any) -> None:
        self._fuse.step()
        await self._inner.publish_event(event)

    async def enqueue_job(self, job: Any) -> None:
        self._fuse.step()
        await self._inner.enqueue_job(job)

    async def publish_dead_letter(self, dead: Any) -> None:
        self._fuse.step()
        await self._inner.publish_dead_letter(dead)

    async def broadcast_cancel(self, cancel: Any) -> None:
        self._fuse.step()
        await self._inner.broadcast_cancel(cancel)


@dataclass
class Platform:
    """A real JetStream (KV bucket + the platform's streams) that schedulers come and go on."""

    broker: NatsBroker
    js: JetStreamContext
    store: NatsKvTaskStore
    timers: list[AsyncioTimer]

    def scheduler(self, fuse: Fuse | None = None) -> SchedulerService:
        """Return a freshly started scheduler process (no memory of a previous one)."""
        bus = NatsEventBus(self.broker)
        timer = AsyncioTimer()
        self.timers.append(timer)
        return SchedulerService(
            store=self.store if fuse is None else DyingStore(self.store, fuse),
            cache=FakeResultCache(),
            fingerprints=FakeFingerprints(),
            bus=bus if fuse is None else DyingBus(bus, fuse),
            dead_jobs=FakeDeadJobs(),
            timer=timer,
            policy=RetryPolicy(),
            clock=utc_now,
        )

    async def events(self, task_id: str) -> list[BacktestEvent]:
        """Return every event of the task in the events stream, in stream order."""
        subject = Subject.event(task_id)
        info = await self.js.stream_info(Stream.EVENTS.value, subjects_filter=subject)
        count = (info.state.subjects or {}).get(subject, 0)
        sub = await self.js.subscribe(subject, ordered_consumer=True)
        try:
            return [EVENTS.validate_json((await sub.next_msg(timeout=5)).data) for _ in range(count)]
        finally:
            await sub.unsubscribe()


@pytest.fixture
async def platform(nats_url: str) -> AsyncIterator[Platform]:
    broker = NatsBroker(nats_url)
    await broker.connect()
    js = broker.connection.jetstream()
    await declare_streams(js, {Stream.EVENTS, Stream.JOBS, Stream.DEAD})
    store = NatsKvTaskStore(broker, bucket=f"test_crash_{new_id()[:8]}")
    await store.open()
    timers: list[AsyncioTimer] = []
    yield Platform(broker, js, store, timers)
    for timer in timers:
        await timer.close()
    await js.delete_key_value(store.kv._name)
    await broker.stop()


async def test_a_scheduler_killed_at_any_step_of_a_plan_leaves_exactly_one_success_with_its_result(
    platform: Platform,
) -> None:
    rng = random.Random(20261204)
    outcomes = []
    for run in range(RUNS):
        command = make_submit()
        task_id = command.task_id
        result = make_backtest_result(command.config, final_equity=1_000_000.0 + run)
        reports: list[RunReport] = [
            RunStarted(task_id=task_id, attempt=1, runner_id="r1"),
            RunProgressed(task_id=task_id, attempt=1, fraction=0.5, stage="proposals"),
            RunSucceeded(task_id=task_id, attempt=1, result=result, duration_ms=10),
        ]
        killed_at, step = rng.randrange(len(reports)), rng.randint(1, 4)
        fuse = Fuse()
        first = platform.scheduler(fuse)
        await first.submit(command)
        for report in reports[:killed_at]:
            await first.report(report)
        fuse.arm(step)
        try:
            await first.report(reports[killed_at])
        except Killed:
            pass  # the process is gone: nothing it would have done next happens
        else:
            step = 0  # the plan had fewer steps: the scheduler finished the report and then died

        second = platform.scheduler()
        await second.resume_owed()  # what main.py runs at start-up
        await second.resume_retries()
        after = list(reports[killed_at + 1 :])
        after.insert(rng.randint(0, len(after)), reports[killed_at])  # redelivered after its ack wait
        for report in after:
            await second.report(report)

        events = await platform.events(task_id)
        successes = [e for e in events if isinstance(e, BacktestSucceeded)]
        last = max(events, key=lambda e: e.seq)
        stored = await platform.store.get(task_id)
        outcomes.append(
            (
                run,
                killed_at,
                step,
                len(successes),
                [s.result.metrics.final_equity for s in successes],
                last.state,
                len({e.seq for e in events}) == len(events),
                stored.record.state if stored else None,
            )
        )
    expected = [
        (run, killed_at, step, 1, [1_000_000.0 + run], TaskState.SUCCESS, True, TaskState.SUCCESS)
        for run, killed_at, step, *_ in outcomes
    ]
    assert outcomes == expected
