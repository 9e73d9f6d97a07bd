"""kill -9 of a runner while its container runs: JetStream redelivers the job and it completes once."""

from __future__ import annotations

import time

import pytest

from .checks import assert_exactly_once
from .stack import LABEL_RUNNER, small_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABEL_TASK = "io.backtest.task_id"  # = backtest_runner.sandbox.docker_sandbox.LABEL_TASK
REDELIVERY_TIMEOUT_S = 120.0  # the job comes back after RUNNER_JOBS_ACK_WAIT_S (30 s) unacked


def test_runner_killed_mid_job_its_job_is_redelivered_and_every_backtest_succeeds_once(stack_factory):
    stack = stack_factory(runners=2, slots=1)
    task_ids = stack.submit_nats([small_config(i, months=36) for i in range(3)])
    container = stack.wait_for_container()
    victim_runner, victim_task = container.labels[LABEL_RUNNER], container.labels[LABEL_TASK]
    victim = stack.services[f"runner-{stack.runner_ids().index(victim_runner)}"]

    victim.kill()
    stack.wait_terminal(task_ids, timeout_s=REDELIVERY_TIMEOUT_S)

    assert_exactly_once(stack, task_ids)
    states = [event["state"] for event in stack.events_by_task()[victim_task]]
    assert states.count("STARTED") == 2, f"the killed job should have started twice: {states}"
    assert (states[0], states[-1]) == ("PENDING", "SUCCESS")
    orphans = [c.name for c in stack.sandbox_containers() if c.labels[LABEL_RUNNER] == victim_runner]
    assert len(orphans) == 1, f"kill -9 leaves exactly the victim's container behind: {orphans}"

    victim.start()  # the same runner id again: it removes its orphan at start-up
    deadline = time.monotonic() + 30
    while stack.sandbox_containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.sandbox_containers() == []
