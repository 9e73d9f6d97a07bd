"""Pure decisions: back-off numbers, what is ignored, and deterministic ids for re-publication."""

from datetime import timedelta

import pytest
from backtest_core.contracts import (
    Failure,
    FailureReason,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
    TaskState,
    TrialSpec,
)
from backtest_scheduler import decisions
from backtest_scheduler.task import RetryPolicy, event_id, job_id
from backtest_testinfra import make_backtest_result

from ..conftest import T0, make_submit

pytestmark = pytest.mark.unit

INFRA = Failure(reason=FailureReason.INFRASTRUCTURE, message="nats timeout")


def accepted_record():  # type: ignore[no-untyped-def]
    plan = decisions.plan_submit(make_submit(), None, "k" * 64, None, T0)
    assert plan.record is not None
    return plan.record


def test_back_off_doubles_from_the_base_and_stops_at_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.5, max_delay_s=3.0)
    assert [policy.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.may_retry(9) and not policy.may_retry(10)


def test_retry_policy_rejects_a_base_above_the_maximum() -> None:
    with pytest.raises(ValueError, match=r"base_delay_s <= max_delay_s, was 5.0, 1.0"):
        RetryPolicy(base_delay_s=5.0, max_delay_s=1.0)


def test_infrastructure_fault_moves_to_retry_with_requeue_time_and_next_attempt() -> None:
    record = accepted_record()
    plan = decisions.plan_report(
        record, RunFailed(task_id=record.task_id, attempt=1, failure=INFRA), RetryPolicy(), T0
    )
    assert plan.record is not None
    assert (plan.record.state, plan.record.seq, plan.record.attempt) == (TaskState.RETRY, 2, 2)
    assert plan.record.requeue_at == T0 + timedelta(seconds=1.0)
    assert plan.requeue_after_s == 1.0
    assert plan.record.failures == (INFRA,)
    assert plan.job is None  # queued only when the back-off has passed

    requeue = decisions.plan_requeue(plan.record, T0 + timedelta(seconds=1))
    assert requeue.job is not None and requeue.job.attempt == 2
    assert requeue.job.message_id == job_id(record.task_id, 2)
    assert requeue.record is not None and requeue.record.requeue_at is None


def test_requeue_after_cancel_is_ignored() -> None:
    record = accepted_record()
    retry = decisions.plan_report(
        record, RunFailed(task_id=record.task_id, attempt=1, failure=INFRA), RetryPolicy(), T0
    )
    assert retry.record is not None
    cancelled = decisions.plan_cancel(retry.record, T0)
    assert cancelled.record is not None and cancelled.record.state is TaskState.CANCELLED

    plan = decisions.plan_requeue(cancelled.record, T0)

    assert plan.job is None and plan.ignored == "nothing to requeue (task CANCELLED)"


def test_the_same_message_on_the_same_record_gives_the_same_event_ids() -> None:
    record = accepted_record()
    started = RunStarted(task_id=record.task_id, attempt=1, runner_id="r")
    first = decisions.plan_report(record, started, RetryPolicy(), T0)
    again = decisions.plan_report(record, started, RetryPolicy(), T0 + timedelta(seconds=9))
    assert (
        [e.message_id for e in first.events]
        == [e.message_id for e in again.events]
        == [event_id(record.task_id, 2, TaskState.STARTED)]
    )


def test_two_different_transitions_to_the_same_seq_get_different_event_ids() -> None:
    record = accepted_record()
    started = decisions.plan_report(
        record, RunStarted(task_id=record.task_id, attempt=1, runner_id="r"), RetryPolicy(), T0
    )
    result = make_backtest_result(record.config)
    succeeded = decisions.plan_report(
        record,
        RunSucceeded(task_id=record.task_id, attempt=1, result=result, duration_ms=5),
        RetryPolicy(),
        T0,
    )
    [start_event], [success_event] = started.events, succeeded.events
    assert (start_event.seq, success_event.seq) == (2, 2)
    assert start_event.message_id != success_event.message_id


def test_a_report_applied_already_is_ignored_when_redelivered() -> None:
    record = accepted_record()
    started = RunStarted(task_id=record.task_id, attempt=1, runner_id="r")
    first = decisions.plan_report(record, started, RetryPolicy(), T0)
    assert first.record is not None and first.record.applied == (started.message_id,)

    again = decisions.plan_report(first.record, started, RetryPolicy(), T0)

    assert again.record is None and again.events == ()
    assert again.ignored == f"report {started.message_id} was applied already (redelivered)"


def test_the_stored_record_carries_the_plans_events_and_job_in_its_outbox() -> None:
    plan = decisions.plan_submit(make_submit(), None, "k" * 64, None, T0)
    owed = plan.owing()

    assert owed is not None and owed.outbox is not None
    assert [e.seq for e in owed.outbox.events] == [1]
    assert owed.outbox.job == plan.job and owed.outbox.job is not None
    assert (owed.outbox.job.attempt, owed.state, owed.seq) == (1, TaskState.PENDING, 1)


def test_progress_before_start_is_ignored_as_illegal() -> None:
    record = accepted_record()
    plan = decisions.plan_report(
        record, RunProgressed(task_id=record.task_id, attempt=1, fraction=0.5, stage="x"), RetryPolicy(), T0
    )
    assert plan.record is None and plan.events == ()
    assert plan.ignored == "a task in state PENDING cannot move to PROGRESS"


def test_progress_redelivered_after_a_later_one_is_ignored_so_fractions_only_grow() -> None:
    """A nacked report comes back after later ones (seen in CI: frames 0.497, 0.95, 0.85)."""
    record = accepted_record()
    policy = RetryPolicy()
    started = decisions.plan_report(
        record, RunStarted(task_id=record.task_id, attempt=1, runner_id="r"), policy, T0
    )
    assert started.record is not None
    current = started.record
    fractions = []
    for fraction in (0.5, 0.95, 0.85, 0.95, 0.97):
        report = RunProgressed(task_id=record.task_id, attempt=1, fraction=fraction, stage="x")
        plan = decisions.plan_report(current, report, policy, T0)
        if plan.record is None:
            assert (
                plan.ignored == f"task {record.task_id} reported progress {fraction} after {current.progress}"
            )
            continue
        current = plan.record
        fractions.append(plan.events[0].fraction)  # type: ignore[union-attr]
    assert fractions == [0.5, 0.95, 0.97]
    assert (current.seq, current.progress) == (5, 0.97)


def test_a_chunk_of_trials_is_one_task_whose_job_and_every_event_carry_its_trials_and_the_chunk_mark() -> (
    None
):
    trials = (TrialSpec(trial=0, params={"fast": 5}), TrialSpec(trial=1, params={"fast": 8}))
    submit = make_submit().model_copy(update={"trials": trials})

    plan = decisions.plan_submit(submit, None, "k" * 64, None, T0)

    assert plan.record is not None and plan.job is not None
    assert plan.record.trials == trials and plan.job.trials == trials
    assert [e.chunk for e in plan.events] == [True]
    started = RunStarted(task_id=submit.task_id, attempt=1, runner_id="r1")
    after = decisions.plan_report(plan.record, started, RetryPolicy(), T0)
    assert [e.chunk for e in after.events] == [True]
    assert decisions.plan_submit(make_submit(), None, "k" * 64, None, T0).events[0].chunk is False
