"""The scheduler's handlers end to end on the in-memory broker: commands and run reports in, events out."""

from __future__ import annotations

import contextlib
import json

import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestFailed,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
    CancelBacktest,
    Failure,
    FailureReason,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
    Stream,
    Subject,
    TaskState,
)
from backtest_scheduler.decisions import CachedResult
from backtest_testinfra import make_backtest_result

from ..conftest import make_submit
from .conftest import MAX_ATTEMPTS, Harness

pytestmark = pytest.mark.service

INFRA = Failure(reason=FailureReason.INFRASTRUCTURE, message="docker daemon unreachable")


async def submit(h: Harness, **changes: object) -> str:
    command = make_submit(**changes)
    await h.broker.publish(command, Subject.SUBMIT, stream=Stream.COMMANDS.value)
    return command.task_id


async def report(h: Harness, message: object, task_id: str) -> None:
    await h.broker.publish(message, Subject.run(task_id), stream=Stream.RUNS.value)


async def test_submit_emits_accepted_and_queues_attempt_one(harness: Harness, store) -> None:  # type: ignore[no-untyped-def]
    task_id = await submit(harness)

    [accepted] = harness.events_of(task_id)
    assert isinstance(accepted, BacktestAccepted)
    assert (accepted.seq, accepted.state, len(accepted.cache_key)) == (1, TaskState.PENDING, 64)
    [job] = harness.jobs
    assert (job.task_id, job.attempt, job.cache_key) == (task_id, 1, accepted.cache_key)
    assert store.tasks[task_id].record.state is TaskState.PENDING


async def test_cache_hit_emits_accepted_then_succeeded_and_queues_no_job(harness: Harness, cache) -> None:  # type: ignore[no-untyped-def]
    first = make_submit()
    key = await harness.service.cache_key(first)
    cache.hits[key] = CachedResult(
        task_id="a" * 32, user_id="u1", result=make_backtest_result(first.config, final_equity=1_234_567.0)
    )

    task_id = await submit(harness, parallel_symbols=4)  # parallelism never changes the result

    accepted, succeeded = harness.events_of(task_id)
    assert isinstance(accepted, BacktestAccepted) and accepted.seq == 1
    assert isinstance(succeeded, BacktestSucceeded) and succeeded.seq == 2
    assert succeeded.cached_from == "a" * 32
    assert succeeded.result.metrics.final_equity == 1_234_567.0
    assert harness.jobs == []


async def test_cache_hit_of_another_users_task_copies_the_result_without_its_task_id(
    harness: Harness, cache
) -> None:  # type: ignore[no-untyped-def]
    first = make_submit()
    key = await harness.service.cache_key(first)
    foreign = "b" * 32
    cache.hits[key] = CachedResult(
        task_id=foreign,
        user_id="someone-else",
        result=make_backtest_result(first.config, final_equity=1_234_567.0),
    )

    task_id = await submit(harness)

    _, succeeded = harness.events_of(task_id)
    assert isinstance(succeeded, BacktestSucceeded) and succeeded.task_id == task_id
    assert succeeded.cached_from is None
    assert foreign not in succeeded.model_dump_json()
    assert succeeded.result.metrics.final_equity == 1_234_567.0


async def test_missing_candles_fail_the_task_with_no_data_and_queue_no_job(harness: Harness) -> None:
    task_id = await submit(harness, symbols=["BTCUSDT", "SOLUSDT"])

    accepted, failed = harness.events_of(task_id)
    assert isinstance(accepted, BacktestAccepted)
    assert isinstance(failed, BacktestFailed) and failed.seq == 2
    assert failed.failure.reason is FailureReason.NO_DATA
    assert "SOLUSDT" in failed.failure.message
    assert harness.jobs == []


async def test_a_second_submit_of_the_same_task_is_ignored(harness: Harness) -> None:
    command = make_submit()
    await harness.broker.publish(command, Subject.SUBMIT, stream=Stream.COMMANDS.value)
    await harness.broker.publish(command, Subject.SUBMIT, stream=Stream.COMMANDS.value)

    assert len(harness.events_of(command.task_id)) == 1
    assert len(harness.jobs) == 1


async def test_run_reports_become_events_with_seq_increasing_by_one(harness: Harness) -> None:
    task_id = await submit(harness)
    config = harness.jobs[0].config

    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    await report(
        harness, RunProgressed(task_id=task_id, attempt=1, fraction=0.25, stage="proposals"), task_id
    )
    await report(
        harness, RunProgressed(task_id=task_id, attempt=1, fraction=0.75, stage="portfolio"), task_id
    )
    result = make_backtest_result(config)
    await report(harness, RunSucceeded(task_id=task_id, attempt=1, result=result, duration_ms=850), task_id)

    events = harness.events_of(task_id)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [type(e) for e in events] == [
        BacktestAccepted,
        BacktestStarted,
        BacktestProgressed,
        BacktestProgressed,
        BacktestSucceeded,
    ]
    assert [e.fraction for e in events if isinstance(e, BacktestProgressed)] == [0.25, 0.75]
    assert len({e.message_id for e in events}) == 5


async def test_strategy_error_fails_at_once_without_retry(harness: Harness) -> None:
    task_id = await submit(harness)
    failure = Failure(reason=FailureReason.STRATEGY_ERROR, message="ZeroDivisionError", traceback="line 3")
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    await report(harness, RunFailed(task_id=task_id, attempt=1, failure=failure), task_id)

    last = harness.events_of(task_id)[-1]
    assert isinstance(last, BacktestFailed) and last.seq == 3
    assert last.failure == failure
    assert len(harness.jobs) == 1


async def test_infrastructure_fault_retries_with_next_attempt_then_dead_letters(harness: Harness) -> None:
    task_id = await submit(harness)

    for attempt in range(1, MAX_ATTEMPTS):
        await report(harness, RunStarted(task_id=task_id, attempt=attempt, runner_id="r1"), task_id)
        await report(harness, RunFailed(task_id=task_id, attempt=attempt, failure=INFRA), task_id)
        retrying = harness.events_of(task_id)[-1]
        assert isinstance(retrying, BacktestRetrying)
        assert (retrying.attempt, retrying.delay_s) == (attempt + 1, min(0.001 * 2 ** (attempt - 1), 0.01))
        await harness.wait_for_jobs(attempt + 1)
        assert harness.jobs[-1].attempt == attempt + 1

    await report(harness, RunStarted(task_id=task_id, attempt=MAX_ATTEMPTS, runner_id="r2"), task_id)
    await report(harness, RunFailed(task_id=task_id, attempt=MAX_ATTEMPTS, failure=INFRA), task_id)

    events = harness.events_of(task_id)
    assert [e.state for e in events] == [
        TaskState.PENDING,
        TaskState.STARTED,
        TaskState.RETRY,
        TaskState.STARTED,
        TaskState.RETRY,
        TaskState.STARTED,
        TaskState.FAILURE,
    ]
    assert [e.seq for e in events] == list(range(1, 8))
    assert isinstance(events[-1], BacktestFailed)
    assert events[-1].failure.reason is FailureReason.DEAD_LETTER
    [dead] = harness.dead
    assert (dead.job.task_id, dead.job.attempt) == (task_id, MAX_ATTEMPTS)
    assert [f.reason for f in dead.history] == [FailureReason.INFRASTRUCTURE] * MAX_ATTEMPTS
    assert len(harness.jobs) == MAX_ATTEMPTS


async def test_report_of_an_earlier_attempt_is_ignored(harness: Harness) -> None:
    task_id = await submit(harness)
    await report(harness, RunFailed(task_id=task_id, attempt=1, failure=INFRA), task_id)
    await harness.wait_for_jobs(2)

    await report(harness, RunProgressed(task_id=task_id, attempt=1, fraction=0.5, stage="late"), task_id)

    assert [e.state for e in harness.events_of(task_id)] == [TaskState.PENDING, TaskState.RETRY]


async def test_cancel_broadcasts_cancel_run_and_emits_cancelled(harness: Harness) -> None:
    task_id = await submit(harness)
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)

    await harness.broker.publish(
        CancelBacktest(task_id=task_id, user_id="u1"), Subject.CANCEL, stream=Stream.COMMANDS.value
    )

    last = harness.events_of(task_id)[-1]
    assert isinstance(last, BacktestCancelled) and last.seq == 3
    assert [c.task_id for c in harness.cancels] == [task_id]


async def test_reports_after_cancel_are_ignored_and_a_second_cancel_does_nothing(harness: Harness) -> None:
    task_id = await submit(harness)
    cancel = CancelBacktest(task_id=task_id, user_id="u1")
    await harness.broker.publish(cancel, Subject.CANCEL, stream=Stream.COMMANDS.value)
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    await report(
        harness,
        RunSucceeded(
            task_id=task_id, attempt=1, result=make_backtest_result(harness.jobs[0].config), duration_ms=5
        ),
        task_id,
    )
    await harness.broker.publish(cancel, Subject.CANCEL, stream=Stream.COMMANDS.value)

    assert [e.state for e in harness.events_of(task_id)] == [TaskState.PENDING, TaskState.CANCELLED]
    assert len(harness.cancels) == 1


async def test_max_deliveries_advisory_dead_letters_the_running_job(harness: Harness, dead_jobs) -> None:  # type: ignore[no-untyped-def]
    task_id = await submit(harness)
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    dead_jobs.jobs[42] = harness.jobs[0]

    advisory = {
        "type": "io.nats.jetstream.advisory.v1.max_deliver",
        "id": "x",
        "timestamp": "2024-01-01T00:00:00Z",
        "stream": "BACKTEST_JOBS",
        "consumer": "runner",
        "stream_seq": 42,
        "deliveries": 3,
    }
    await harness.broker.publish(advisory, Subject.JOBS_MAX_DELIVERIES_ADVISORY)

    last = harness.events_of(task_id)[-1]
    assert isinstance(last, BacktestFailed) and last.seq == 3
    assert last.failure.reason is FailureReason.DEAD_LETTER
    assert "delivered 3 times" in last.failure.message
    [dead] = harness.dead
    assert dead.job.task_id == task_id
    assert dead_jobs.jobs == {}


async def test_a_max_deliveries_advisory_redelivered_after_a_failed_removal_fails_the_task_once(
    harness: Harness, dead_jobs
) -> None:  # type: ignore[no-untyped-def]
    task_id = await submit(harness)
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    dead_jobs.jobs[42] = harness.jobs[0]
    dead_jobs.removes_to_fail = 1
    advisory = {
        "type": "io.nats.jetstream.advisory.v1.max_deliver",
        "id": "x",
        "timestamp": "2024-01-01T00:00:00Z",
        "stream": "BACKTEST_JOBS",
        "consumer": "runner",
        "stream_seq": 42,
        "deliveries": 3,
    }
    with contextlib.suppress(TimeoutError):
        await harness.broker.publish(advisory, Subject.JOBS_MAX_DELIVERIES_ADVISORY)
    assert 42 in dead_jobs.jobs  # the job stays in the stream until its removal succeeds

    await harness.broker.publish(advisory, Subject.JOBS_MAX_DELIVERIES_ADVISORY)  # JetStream redelivers

    failed = [e for e in harness.events_of(task_id) if isinstance(e, BacktestFailed)]
    assert [e.failure.reason for e in failed] == [FailureReason.DEAD_LETTER]
    assert len(harness.dead) == 1
    assert dead_jobs.jobs == {}


async def publish_raw(h: Harness, data: dict[str, object], subject: str, stream: Stream) -> None:
    raw = json.dumps(data).encode()  # NaN and Infinity as JSON's non-standard tokens, as Python writes them
    await h.broker.publish(raw, subject, stream=stream.value, headers={"content-type": "application/json"})


async def test_a_result_with_nan_final_equity_ends_the_task_as_failure_naming_the_field(
    harness: Harness,
) -> None:
    task_id = await submit(harness)
    await report(harness, RunStarted(task_id=task_id, attempt=1, runner_id="r1"), task_id)
    await report(harness, RunProgressed(task_id=task_id, attempt=1, fraction=0.5, stage="p"), task_id)
    succeeded = RunSucceeded(
        task_id=task_id, attempt=1, result=make_backtest_result(harness.jobs[0].config), duration_ms=5
    ).model_dump(mode="json")
    for bad in (float("nan"), None):  # NaN as a JSON token, or as the null Infinity/NaN serialise to
        succeeded["result"]["metrics"]["final_equity"] = bad
        await publish_raw(harness, succeeded, Subject.run(task_id), Stream.RUNS)

    events = harness.events_of(task_id)
    assert [e.state for e in events] == [
        TaskState.PENDING,
        TaskState.STARTED,
        TaskState.PROGRESS,
        TaskState.FAILURE,
    ]
    failed = events[-1]
    assert isinstance(failed, BacktestFailed) and failed.seq == 4
    assert failed.failure.reason is FailureReason.BAD_OUTPUT
    assert "result.metrics.final_equity" in failed.failure.message


async def test_a_submission_with_a_null_cash_ends_its_task_as_failure_naming_the_field(
    harness: Harness, store
) -> None:  # type: ignore[no-untyped-def]
    command = make_submit().model_dump(mode="json")
    command["config"]["cash"] = None  # what `"cash": Infinity` became on the way

    await publish_raw(harness, command, Subject.SUBMIT, Stream.COMMANDS)

    [failed] = harness.events_of(command["task_id"])
    assert isinstance(failed, BacktestFailed) and (failed.seq, failed.user_id) == (1, "u1")
    assert failed.failure.reason is FailureReason.INVALID_CONFIG
    assert "config.cash" in failed.failure.message
    assert harness.jobs == []
    assert store.tasks[command["task_id"]].record.state is TaskState.FAILURE


async def test_a_cancel_that_comes_before_its_submission_ends_the_task_cancelled(harness: Harness) -> None:
    command = make_submit()
    await harness.broker.publish(
        CancelBacktest(task_id=command.task_id, user_id="u1"), Subject.CANCEL, stream=Stream.COMMANDS.value
    )

    await harness.broker.publish(command, Subject.SUBMIT, stream=Stream.COMMANDS.value)

    events = harness.events_of(command.task_id)
    assert [(e.seq, e.state, e.user_id) for e in events] == [
        (1, TaskState.PENDING, "u1"),
        (2, TaskState.CANCELLED, "u1"),
    ]
    assert harness.jobs == []
