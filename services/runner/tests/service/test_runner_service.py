"""The job loop and executor over hand-written fakes: report order, ack/nak, cancellation, slots, shutdown."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from backtest_core.contracts import (
    CancelRun,
    FailureReason,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
)
from backtest_runner.sandbox.outcome import KillSwitch, SandboxSucceeded
from backtest_runner.service import RunnerService

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = pytest.mark.service


async def _drain(service: RunnerService, until: asyncio.Event | None = None) -> None:
    """Run the loop until the source is empty and every job finished (or `until` is set)."""
    loop_task = asyncio.create_task(service.run())
    for _ in range(2000):
        await asyncio.sleep(0.001)
        if until is not None and until.is_set():
            break
        if (
            until is None
            and not service.running_task_ids
            and not service._source.pending
            and not service._tasks
        ):  # type: ignore[attr-defined]
            break
    await service.stop(grace_s=5.0)
    await loop_task


async def test_a_job_reports_started_progress_succeeded_in_order_then_acks(harness: Harness) -> None:
    message = harness.message(harness.job())

    await _drain(harness.service([message]))

    reports = harness.publisher.reports
    assert [r.kind for r in reports] == ["started", "progressed", "progressed", "progressed", "succeeded"]
    assert isinstance(reports[0], RunStarted) and reports[0].runner_id == "runner-1"
    assert [r.fraction for r in reports if isinstance(r, RunProgressed)] == [0.0, 0.5, 1.0]
    succeeded = reports[-1]
    assert isinstance(succeeded, RunSucceeded)
    assert succeeded.result.metrics.final_equity == 1234.5 and succeeded.duration_ms >= 0
    assert {r.task_id for r in reports} == {"a" * 32} and {r.attempt for r in reports} == {1}
    assert message.events == ["ack"]


async def test_the_sandbox_gets_the_job_and_one_candle_file_per_symbol_and_the_dir_is_removed(
    harness,
) -> None:  # type: ignore[no-untyped-def]
    await _drain(harness.service([harness.message(harness.job())]))

    assert harness.sandbox.seen_jobs[0].config == harness.config
    assert harness.sandbox.seen_jobs[0].equity_points_max == 500
    assert harness.sandbox.seen_files == [
        ["batch.json", "candles", "candles/BTCUSDT.npz", "candles/ETHUSDT.npz"]
    ]  # a job's first try is a batch of one (a warm sandbox of its key may run it)
    end_ns = harness.start_ns + 5 * harness.day_ns
    assert harness.candles.calls == [
        ("BTCUSDT", "1d", harness.start_ns, end_ns),
        ("ETHUSDT", "1d", harness.start_ns, end_ns),
    ]
    assert list(harness.work_dir.iterdir()) == []


async def test_an_infrastructure_fault_in_the_sandbox_is_reported_and_acked(harness: Harness) -> None:
    harness.sandbox.outcome = harness.infrastructure_failure
    harness.sandbox.progress = []
    message = harness.message(harness.job())

    await _drain(harness.service([message]))

    assert harness.publisher.kinds() == ["started", "failed"]
    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.INFRASTRUCTURE
    assert message.events == ["ack"]


async def test_a_candle_store_error_is_an_infrastructure_failure_without_a_container(
    harness: Harness,
) -> None:
    harness.candles.fail = ConnectionError("mongo unreachable")
    message = harness.message(harness.job())

    await _drain(harness.service([message]))

    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed)
    assert failed.failure.reason is FailureReason.INFRASTRUCTURE
    assert failed.failure.message == "loading candles failed: ConnectionError('mongo unreachable')"
    assert harness.sandbox.seen_jobs == [] and message.events == ["ack"]


async def test_a_symbol_without_candles_is_no_data(harness: Harness) -> None:
    harness.candles.empty = frozenset({"ETHUSDT"})

    await _drain(harness.service([harness.message(harness.job())]))

    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.NO_DATA
    assert "for ['ETHUSDT']" in failed.failure.message
    assert harness.sandbox.seen_jobs == []


async def test_no_data_message_says_an_open_range_in_words_not_none(harness: Harness) -> None:
    harness.candles.empty = frozenset({"ETHUSDT"})
    open_ended = harness.config.model_copy(update={"start": None, "end": None})

    await _drain(harness.service([harness.message(harness.job(config=open_ended))]))

    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed)
    assert failed.failure.message.startswith("no 1d candles at any time for ['ETHUSDT']")
    assert "None" not in failed.failure.message


async def test_a_result_for_another_config_is_bad_output(harness: Harness) -> None:
    other = harness.config.model_copy(update={"cash": 5.0})
    harness.sandbox.outcome = SandboxSucceeded(harness.result(other))

    await _drain(harness.service([harness.message(harness.job())]))

    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.BAD_OUTPUT


async def test_a_result_too_large_to_deliver_is_an_output_limit_failure_not_a_redelivery(
    harness: Harness,
) -> None:
    result = harness.result()
    size = len(RunSucceeded(task_id="a" * 32, attempt=1, result=result, duration_ms=0).model_dump_json())
    harness.publisher.max_bytes = size - 1  # the started and progress reports fit; the result does not
    message = harness.message(harness.job())

    await _drain(harness.service([message]))

    assert harness.publisher.kinds() == ["started", "progressed", "progressed", "progressed", "failed"]
    failed = harness.publisher.reports[-1]
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.OUTPUT_LIMIT
    assert f"({len(result.trades):,} trades), over the platform's limit of" in failed.failure.message
    assert "shorter date range" in failed.failure.message
    assert message.events == ["ack"]  # terminal: not handed back for a retry that would fail the same way


async def test_cancelling_a_running_task_kills_it_acks_and_reports_nothing_terminal(harness: Harness) -> None:
    harness.sandbox.wait_for_kill = True
    message = harness.message(harness.job())
    service = harness.service([message])
    loop_task = asyncio.create_task(service.run())
    while "a" * 32 not in service.running_task_ids or harness.sandbox.running == 0:
        await asyncio.sleep(0.001)

    assert service.cancel(CancelRun(task_id="a" * 32)) is True
    while message.events != ["ack"]:
        await asyncio.sleep(0.001)
    await service.stop(grace_s=1.0)
    await loop_task

    assert harness.publisher.kinds() == ["started", "progressed", "progressed", "progressed"]
    assert list(harness.work_dir.iterdir()) == []


async def test_a_job_cancelled_before_it_arrived_is_acked_without_running(harness: Harness) -> None:
    message = harness.message(harness.job())
    service = harness.service([message])

    assert service.cancel(CancelRun(task_id="a" * 32)) is False
    await _drain(service)

    assert message.events == ["ack"]
    assert harness.publisher.reports == [] and harness.sandbox.seen_jobs == []


async def test_shutdown_past_the_grace_period_kills_and_naks_the_running_job(harness: Harness) -> None:
    harness.sandbox.wait_for_kill = True
    message = harness.message(harness.job())
    service = harness.service([message])
    loop_task = asyncio.create_task(service.run())
    while harness.sandbox.running == 0:
        await asyncio.sleep(0.001)

    await service.stop(grace_s=0.0)
    await loop_task

    assert message.events == ["nak"]
    assert "failed" not in harness.publisher.kinds() and "succeeded" not in harness.publisher.kinds()


async def test_no_more_jobs_run_at_once_than_there_are_slots(harness: Harness) -> None:
    harness.sandbox.release = asyncio.Event()
    messages = [harness.message(harness.job(f"{i:032x}")) for i in range(5)]
    service = harness.service(messages, slots=2)
    loop_task = asyncio.create_task(service.run())
    while harness.sandbox.running < 2:
        await asyncio.sleep(0.001)
    for _ in range(50):
        await asyncio.sleep(0.001)  # give the loop every chance to start a third job
    running_before_release = harness.sandbox.running
    harness.sandbox.release.set()
    while any(m.events != ["ack"] for m in messages):
        await asyncio.sleep(0.001)
    await service.stop(grace_s=1.0)
    await loop_task

    assert running_before_release == 2
    assert harness.sandbox.max_running == 2
    assert harness.publisher.kinds().count("succeeded") == 5


async def test_a_running_job_is_kept_alive_with_in_progress(harness: Harness) -> None:
    harness.sandbox.release = asyncio.Event()
    message = harness.message(harness.job())
    service = harness.service([message], heartbeat_s=0.001)
    loop_task = asyncio.create_task(service.run())
    while message.events.count("in_progress") < 3:
        await asyncio.sleep(0.001)
    harness.sandbox.release.set()
    while "ack" not in message.events:
        await asyncio.sleep(0.001)
    await service.stop(grace_s=1.0)
    await loop_task

    assert message.events[-1] == "ack"
    assert set(message.events[:-1]) == {"in_progress"}


async def test_a_message_that_is_not_a_job_is_terminated(harness: Harness) -> None:
    message = harness.message(b'{"task_id": "nope"}')

    await _drain(harness.service([message]))

    assert message.events == ["term"] and harness.publisher.reports == []


def test_a_kill_requested_before_arming_runs_when_armed() -> None:
    from backtest_runner.sandbox.outcome import KillReason

    switch = KillSwitch()
    killed: list[str] = []
    switch.kill(KillReason.CANCELLED)
    switch.kill(KillReason.TIMEOUT)

    switch.arm(lambda: killed.append("x"))

    assert switch.reason is KillReason.CANCELLED and killed == ["x"]
