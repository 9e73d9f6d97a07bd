"""Batches: jobs of one user, strategy, interval and range share one sandbox run; each job is reported
and acked as it ends; an early end of the container is the running job's, or the rest run again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from backtest_core.contracts import (
    CancelRun,
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunSucceeded,
    SandboxError,
    SandboxJob,
    SandboxResult,
)
from backtest_runner.sandbox.outcome import KillReason, SandboxFailed
from backtest_runner.service import RunnerService

if TYPE_CHECKING:
    from conftest import BatchStep, FakeMessage, Harness

pytestmark = pytest.mark.service


_USERS = {"u1": 1, "u2": 2}
_STRATEGIES = {"sma_cross": 1, "rsi": 2}


def _jobs(harness: Harness, n: int, user: str = "u1", strategy: str = "sma_cross") -> list[RunBacktestJob]:
    """n jobs of `user` with `strategy`, each with its own params and a task id naming all three."""
    jobs = []
    for i in range(n):
        config = harness.config.model_copy(update={"strategy": strategy, "params": {"fast": i + 2}})
        task_id = f"{_USERS[user]:x}{_STRATEGIES[strategy]:x}{i:030x}"
        jobs.append(harness.job(task_id, config).model_copy(update={"user_id": user}))
    return jobs


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


async def _run_all(service: RunnerService, messages: list[FakeMessage]) -> None:
    loop_task = asyncio.create_task(service.run())
    await _until(lambda: all(m.events and m.events[-1] in ("ack", "nak") for m in messages))
    await service.stop(grace_s=1.0)
    await loop_task


def _steps(harness: Harness, by_task: dict[str, BatchStep]) -> Callable[[SandboxJob], BatchStep]:
    def step(job: SandboxJob) -> BatchStep:
        default = SandboxResult(task_id=job.task_id, result=harness.result(job.config))
        return by_task.get(job.task_id, default)

    return step


def _terminal(harness: Harness, task_id: str) -> RunSucceeded | RunFailed:
    reports = [
        r for r in harness.publisher.reports if r.task_id == task_id and r.kind in ("succeeded", "failed")
    ]
    assert len(reports) == 1, reports
    report = reports[0]
    assert isinstance(report, RunSucceeded | RunFailed)
    return report


async def test_jobs_of_one_user_and_strategy_run_in_one_sandbox_with_the_candles_loaded_once(
    harness: Harness,
) -> None:
    jobs = _jobs(harness, 5)
    messages = [harness.message(job) for job in jobs]

    await _run_all(harness.service(messages, batch_max=64), messages)

    assert harness.sandbox.seen_batches == [[job.task_id for job in jobs]]
    assert harness.sandbox.seen_jobs == []  # no single-job run
    assert harness.sandbox.seen_files == [
        ["batch.json", "candles", "candles/BTCUSDT.npz", "candles/ETHUSDT.npz"]
    ]
    assert [call[0] for call in harness.candles.calls] == ["BTCUSDT", "ETHUSDT"]
    for job in jobs:
        report = _terminal(harness, job.task_id)
        assert isinstance(report, RunSucceeded) and report.result.config == job.config
        assert harness.publisher.kinds(job.task_id) == [
            "started",
            "progressed",
            "progressed",
            "progressed",
            "succeeded",
        ]
    assert all(m.events == ["ack"] for m in messages)
    assert list(harness.work_dir.iterdir()) == []


async def test_another_user_or_strategy_never_shares_a_sandbox(harness: Harness) -> None:
    mine, theirs, other = _jobs(harness, 5), _jobs(harness, 2, user="u2"), _jobs(harness, 1, strategy="rsi")
    m, t, s = [j.task_id for j in mine], [j.task_id for j in theirs], [j.task_id for j in other]
    arrival = [mine[0], theirs[0], mine[1], other[0], theirs[1], mine[2], mine[3], mine[4]]
    messages = [harness.message(job) for job in arrival]

    await _run_all(harness.service(messages, slots=1, batch_max=4), messages)

    # Fetch 1 takes m0 t0 m1 s0: m0+m1 share a sandbox, t0 and s0 wait and run alone; fetch 2 takes
    # t1 m2 m3 m4.
    assert harness.sandbox.seen_batches == [[m[0], m[1]], [m[2], m[3], m[4]]]
    assert [job.task_id for job in harness.sandbox.seen_jobs] == [t[0], s[0], t[1]]
    assert all(m.events == ["ack"] for m in messages)
    assert all(isinstance(_terminal(harness, job.task_id), RunSucceeded) for job in arrival)


async def test_one_fetch_and_so_one_batch_takes_at_most_batch_max_jobs(harness: Harness) -> None:
    jobs = _jobs(harness, 5)
    messages = [harness.message(job) for job in jobs]
    source = harness.source(messages)

    await _run_all(harness.service(source, slots=1, batch_max=2), messages)

    ids = [job.task_id for job in jobs]
    assert source.fetched == [2, 2, 1]
    assert harness.sandbox.seen_batches == [ids[0:2], ids[2:4]]
    assert [job.task_id for job in harness.sandbox.seen_jobs] == [ids[4]]


async def test_each_job_is_acked_as_it_ends_and_a_cancel_mid_batch_runs_the_rest_again(
    harness: Harness,
) -> None:
    jobs = _jobs(harness, 3)
    ids = [job.task_id for job in jobs]
    harness.sandbox.batch_step = _steps(harness, {ids[1]: None})  # job 1 runs until killed
    messages = [harness.message(job) for job in jobs]
    service = harness.service(messages, batch_max=64)
    loop_task = asyncio.create_task(service.run())
    await _until(lambda: messages[0].events == ["ack"] and ids[1] in service.running_task_ids)
    assert messages[1].events == messages[2].events == []  # still running, still waiting

    assert service.cancel(CancelRun(task_id=ids[1])) is True
    await _until(lambda: all(m.events == ["ack"] for m in messages))
    await service.stop(grace_s=1.0)
    await loop_task

    assert harness.sandbox.seen_batches == [ids]
    assert [job.task_id for job in harness.sandbox.seen_jobs] == [ids[2]]  # the one left runs alone
    assert "succeeded" not in harness.publisher.kinds(ids[1]) and "failed" not in harness.publisher.kinds(
        ids[1]
    )
    assert isinstance(_terminal(harness, ids[0]), RunSucceeded) and isinstance(
        _terminal(harness, ids[2]), RunSucceeded
    )


async def test_a_container_killed_for_memory_mid_batch_runs_that_job_alone_and_the_rest_batched(
    harness: Harness,
) -> None:
    jobs = _jobs(harness, 4)
    ids = [job.task_id for job in jobs]
    oom = SandboxFailed(Failure(reason=FailureReason.OUT_OF_MEMORY, message="over 1024 MiB"))
    harness.sandbox.batch_step = _steps(harness, {ids[1]: oom})
    harness.sandbox.outcome = oom  # alone, it runs out of memory again: that is its own outcome
    messages = [harness.message(job) for job in jobs]

    await _run_all(harness.service(messages, batch_max=64), messages)

    assert harness.sandbox.seen_batches == [ids, ids[2:]]
    assert [job.task_id for job in harness.sandbox.seen_jobs] == [ids[1]]
    failed = _terminal(harness, ids[1])
    assert isinstance(failed, RunFailed) and failed.failure == oom.failure
    assert [type(_terminal(harness, t)) for t in (ids[0], ids[2], ids[3])] == [RunSucceeded] * 3
    assert all(m.events == ["ack"] for m in messages)


async def test_a_timeout_mid_batch_is_the_running_jobs_and_the_rest_run_again(harness: Harness) -> None:
    jobs = _jobs(harness, 4)
    ids = [job.task_id for job in jobs]
    harness.sandbox.batch_step = _steps(harness, {ids[1]: None})
    messages = [harness.message(job) for job in jobs]
    service = harness.service(messages, batch_max=64)
    loop_task = asyncio.create_task(service.run())
    await _until(lambda: ids[1] in service.running_task_ids and messages[0].events == ["ack"])

    service._running[ids[1]].kill(KillReason.TIMEOUT)  # what the sandbox's wall clock does
    await _until(lambda: all(m.events == ["ack"] for m in messages))
    await service.stop(grace_s=1.0)
    await loop_task

    failed = _terminal(harness, ids[1])
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.TIMEOUT
    assert harness.sandbox.seen_batches == [ids, ids[2:]] and harness.sandbox.seen_jobs == []


async def test_shutdown_mid_batch_hands_back_the_unfinished_jobs_and_the_waiting_batches(
    harness: Harness,
) -> None:
    jobs, theirs = _jobs(harness, 3), _jobs(harness, 2, user="u2")
    ids = [job.task_id for job in jobs]
    harness.sandbox.batch_step = _steps(harness, {ids[1]: None})
    messages = [harness.message(job) for job in [*jobs, *theirs]]
    service = harness.service(messages, slots=1, batch_max=64, heartbeat_s=0.001)
    loop_task = asyncio.create_task(service.run())
    await _until(lambda: "ack" in messages[0].events and messages[4].events.count("in_progress") >= 2)

    await service.stop(grace_s=0.0)
    await loop_task

    assert messages[0].events[-1] == "ack"
    for waiting in messages[1:]:  # the running job, the one after it, the other user's waiting batch
        assert waiting.events[-1] == "nak" and set(waiting.events[:-1]) <= {"in_progress"}
    assert harness.sandbox.seen_batches == [ids]
    assert [r.task_id for r in harness.publisher.reports if r.kind in ("succeeded", "failed")] == [ids[0]]


async def test_a_final_line_for_another_task_is_bad_output_for_the_job_it_ended(harness: Harness) -> None:
    jobs = _jobs(harness, 2)
    ids = [job.task_id for job in jobs]
    forged = SandboxError(task_id=ids[1], failure=Failure(reason=FailureReason.STRATEGY_ERROR, message="x"))
    harness.sandbox.batch_step = _steps(harness, {ids[0]: forged})
    messages = [harness.message(job) for job in jobs]

    await _run_all(harness.service(messages, batch_max=64), messages)

    failed = _terminal(harness, ids[0])
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.BAD_OUTPUT
    assert (
        failed.failure.message
        == f"the sandbox's final line number 1 names task {ids[1]!r}, expected {ids[0]!r}"
    )
    assert isinstance(_terminal(harness, ids[1]), RunSucceeded)


async def test_an_infrastructure_fault_mid_batch_fails_every_job_left(harness: Harness) -> None:
    jobs = _jobs(harness, 3)
    ids = [job.task_id for job in jobs]
    harness.sandbox.batch_step = _steps(harness, {ids[1]: harness.infrastructure_failure})
    messages = [harness.message(job) for job in jobs]

    await _run_all(harness.service(messages, batch_max=64), messages)

    assert isinstance(_terminal(harness, ids[0]), RunSucceeded)
    for task_id in ids[1:]:
        failed = _terminal(harness, task_id)
        assert isinstance(failed, RunFailed) and failed.failure == harness.infrastructure_failure.failure
    assert harness.sandbox.seen_batches == [ids] and harness.sandbox.seen_jobs == []


async def test_a_job_whose_symbol_has_no_candles_fails_alone_and_the_others_share_the_sandbox(
    harness: Harness,
) -> None:
    jobs = _jobs(harness, 3)
    jobs[1] = jobs[1].model_copy(
        update={"config": jobs[1].config.model_copy(update={"symbols": ["LTCUSDT"]})}
    )
    harness.candles.empty = frozenset({"LTCUSDT"})
    ids = [job.task_id for job in jobs]
    messages = [harness.message(job) for job in jobs]

    await _run_all(harness.service(messages, batch_max=64), messages)

    failed = _terminal(harness, ids[1])
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.NO_DATA
    assert harness.sandbox.seen_batches == [[ids[0], ids[2]]]
    assert harness.publisher.kinds(ids[1]) == ["started", "failed"]
