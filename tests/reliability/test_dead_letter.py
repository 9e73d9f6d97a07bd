"""A job that keeps failing for infrastructure reasons is retried, then dead-lettered with its history."""

from __future__ import annotations

import pytest
from backtest_testinfra.stack import small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MISSING_IMAGE = "backtest-sandbox:missing-on-purpose"


def test_job_whose_sandbox_image_is_missing_lands_in_dead_letter_with_three_failures(stack_factory):
    stack = stack_factory(
        runners=1,
        overrides={
            "runner": {"RUNNER_SANDBOX_IMAGE": MISSING_IMAGE},
            "scheduler": {"SCHEDULER_MAX_ATTEMPTS": "3", "SCHEDULER_RETRY_BASE_DELAY_S": "0.2"},
        },
    )
    [task_id] = stack.submit_nats([small_config(0)])

    stack.wait_terminal([task_id], timeout_s=60)

    [doc] = assert_exactly_once(stack, [task_id], state="FAILURE")
    assert doc["failure"]["reason"] == "dead_letter"
    assert doc["attempt"] == 3
    states = [event["state"] for event in stack.events_by_task()[task_id]]
    assert states == ["PENDING", "STARTED", "RETRY", "STARTED", "RETRY", "STARTED", "FAILURE"]
    [dead] = stack.dead_letters()
    assert (dead.job.task_id, dead.job.attempt) == (task_id, 3)
    assert [failure.reason.value for failure in dead.history] == ["infrastructure"] * 3
    assert all(MISSING_IMAGE in failure.message for failure in dead.history)
