"""Admission on the in-memory broker: a user's jobs beyond their cap wait, freed slots go round robin."""

from __future__ import annotations

import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    CancelBacktest,
    Failure,
    FailureReason,
    RunFailed,
    RunStarted,
    RunSucceeded,
    Stream,
    Subject,
    SubmitBacktest,
    TaskState,
    new_id,
)
from backtest_scheduler.adapters.nats_event_bus import NatsEventBus
from backtest_scheduler.admission import AdmissionLimits
from backtest_scheduler.admission_gate import AdmissionGate
from backtest_testinfra import make_backtest_result

from ..conftest import make_config
from .conftest import Harness

pytestmark = pytest.mark.service

LIMITS = AdmissionLimits(per_user_in_flight=1, max_in_flight=2)


@pytest.fixture
def admission_limits() -> AdmissionLimits:
    return LIMITS


async def submit(h: Harness, user: str, fast: int) -> str:
    command = SubmitBacktest(
        task_id=new_id(), user_id=user, config=make_config(params={"fast": fast, "slow": 40})
    )
    await h.broker.publish(command, Subject.SUBMIT, stream=Stream.COMMANDS.value)
    return command.task_id


async def succeed(h: Harness, task_id: str) -> None:
    result = make_backtest_result(make_config())
    for report in (
        RunStarted(task_id=task_id, attempt=1, runner_id="r1"),
        RunSucceeded(task_id=task_id, attempt=1, result=result, duration_ms=5),
    ):
        await h.broker.publish(report, Subject.run(task_id), stream=Stream.RUNS.value)


def queued(h: Harness) -> list[tuple[str, int]]:
    return [(job.task_id, job.attempt) for job in h.jobs]


async def test_a_users_jobs_beyond_their_cap_wait_while_another_users_job_is_queued_at_once(
    harness: Harness, store
) -> None:  # type: ignore[no-untyped-def]
    a1, a2, a3 = [await submit(harness, "alice", fast) for fast in (3, 4, 5)]
    b1 = await submit(harness, "bob", 6)

    # alice may hold 1 of the 2 slots: a1 is queued, a2 and a3 wait; bob's b1 takes the other slot.
    assert queued(harness) == [(a1, 1), (b1, 1)]
    assert {store.tasks[t].record.state for t in (a2, a3)} == {TaskState.PENDING}

    await succeed(harness, a1)
    assert queued(harness) == [(a1, 1), (b1, 1), (a2, 1)]
    await succeed(harness, b1)  # bob's slot is free but only alice waits, and she is at her cap
    assert queued(harness) == [(a1, 1), (b1, 1), (a2, 1)]
    await succeed(harness, a2)
    assert queued(harness) == [(a1, 1), (b1, 1), (a2, 1), (a3, 1)]


async def test_a_cancelled_waiting_task_ends_cancelled_and_its_job_is_never_queued(
    harness: Harness,
) -> None:
    a1, a2 = await submit(harness, "alice", 3), await submit(harness, "alice", 4)

    await harness.broker.publish(
        CancelBacktest(task_id=a2, user_id="alice"), Subject.CANCEL, stream=Stream.COMMANDS.value
    )
    await succeed(harness, a1)

    assert [type(e) for e in harness.events_of(a2)] == [BacktestAccepted, BacktestCancelled]
    assert queued(harness) == [(a1, 1)]


async def test_a_failed_task_frees_its_slot_and_a_retried_one_keeps_it(harness: Harness) -> None:
    a1, a2, a3 = [await submit(harness, "alice", fast) for fast in (3, 4, 5)]
    infra = Failure(reason=FailureReason.INFRASTRUCTURE, message="docker daemon unreachable")
    broken = Failure(reason=FailureReason.STRATEGY_ERROR, message="ZeroDivisionError")

    await harness.broker.publish(
        RunFailed(task_id=a1, attempt=1, failure=infra), Subject.run(a1), stream=Stream.RUNS.value
    )
    await harness.wait_for_jobs(2)  # attempt 2 of a1 holds alice's slot: a2 still waits
    assert queued(harness) == [(a1, 1), (a1, 2)]
    await harness.broker.publish(
        RunFailed(task_id=a1, attempt=2, failure=broken), Subject.run(a1), stream=Stream.RUNS.value
    )

    assert queued(harness) == [(a1, 1), (a1, 2), (a2, 1)]
    assert a3 not in {job.task_id for job in harness.jobs}


async def test_a_restarted_scheduler_frees_the_slot_of_a_task_that_ended_before_its_slot_was_freed(
    harness: Harness, store, admission_store
) -> None:  # type: ignore[no-untyped-def]
    a1, a2 = await submit(harness, "alice", 3), await submit(harness, "alice", 4)
    stored = store.tasks[a1]  # the task ended, then the scheduler died before freeing its slot
    await store.update(stored.record.model_copy(update={"state": TaskState.SUCCESS}), stored.revision)

    restarted = AdmissionGate(
        slots=admission_store, tasks=store, bus=NatsEventBus(harness.broker), limits=LIMITS
    )
    assert await restarted.resume() == 1

    assert queued(harness) == [(a1, 1), (a2, 1)]
    state, _ = await admission_store.load()
    assert [(t.key, t.dispatched) for t in state.in_flight] == [(a2, True)]
