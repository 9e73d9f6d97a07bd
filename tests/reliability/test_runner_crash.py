"""kill -9 of one of two runners on one host while its container runs: the other runner removes the
container once the victim's heartbeat expired, JetStream redelivers the job and every backtest succeeds
exactly once; a container of another platform instance on the same engine is never touched."""

from __future__ import annotations

import time
from collections.abc import Sequence

import docker
import pytest
from backtest_testinfra.stack import RUNNER_HEARTBEAT_TTL_S, Stack, small_config
from backtest_testinfra.stack_clients import LABEL_INSTANCE, LABEL_RUNNER, SandboxContainer
from docker.models.containers import Container

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABEL_ROLE = "io.backtest.role"  # = backtest_runner.sandbox.docker_sandbox.LABEL_ROLE
LABEL_TASK = "io.backtest.task_id"  # = backtest_runner.sandbox.docker_sandbox.LABEL_TASK
REDELIVERY_TIMEOUT_S = 120.0  # the job comes back after RUNNER_JOBS_ACK_WAIT_S (30 s) unacked
REMOVAL_TIMEOUT_S = 4 * RUNNER_HEARTBEAT_TTL_S  # the TTL, then at most one sweep period (TTL / 3), margin


def _sleeping_sandbox(client: docker.DockerClient, image: str, instance: str, runner: str) -> Container:
    """Start a container labelled as a sandbox of `runner` in platform `instance` that sleeps 5 min."""
    container: Container = client.containers.run(
        image,
        ["python3.11", "-c", "import time; time.sleep(300)"],
        entrypoint=[],
        network_mode="none",
        user="65534:65534",
        labels={LABEL_ROLE: "sandbox", LABEL_TASK: "ghost", LABEL_RUNNER: runner, LABEL_INSTANCE: instance},
        detach=True,
    )
    return container


def _wait_for_job_container(
    stack: Stack, task_ids: Sequence[str], timeout_s: float = 60.0
) -> SandboxContainer:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [c for c in stack.sandbox_containers() if c.labels.get(LABEL_TASK) in task_ids]
        if running:
            return running[0]
        time.sleep(0.02)
    raise AssertionError(f"no sandbox container of {task_ids} within {timeout_s:.0f} s\n{stack.log_tails()}")


def _wait_gone(stack: Stack, runner_id: str, timeout_s: float) -> float:
    """Wait until no container of `runner_id` is left in the stack's instance; return the seconds it took."""
    start = time.monotonic()
    while any(c.labels[LABEL_RUNNER] == runner_id for c in stack.sandbox_containers()):
        if time.monotonic() - start > timeout_s:
            raise AssertionError(
                f"containers of {runner_id} still there after {timeout_s:.0f} s\n{stack.log_tails()}"
            )
        time.sleep(0.1)
    return time.monotonic() - start


def test_runner_killed_mid_job_its_container_is_removed_by_the_other_runner_and_every_backtest_succeeds_once(
    stack_factory, docker_client, sandbox_image
):
    stack = stack_factory(runners=2, slots=1)
    foreign = _sleeping_sandbox(docker_client, sandbox_image, f"other-{stack.database}", "ghost-runner")
    try:
        ghost = _sleeping_sandbox(docker_client, sandbox_image, stack.database, "ghost-runner")
        # a runner of this instance that never beat: its container goes at the first sweeps
        _wait_gone(stack, "ghost-runner", REMOVAL_TIMEOUT_S)
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(ghost.id)

        task_ids = stack.submit_nats([small_config(i, months=36) for i in range(3)])
        container = _wait_for_job_container(stack, task_ids)
        victim_runner, victim_task = container.labels[LABEL_RUNNER], container.labels[LABEL_TASK]
        victim = stack.services[f"runner-{stack.runner_ids().index(victim_runner)}"]
        victim.kill()

        _wait_gone(stack, victim_runner, REMOVAL_TIMEOUT_S)  # removed by the survivor: the victim is dead
        assert not victim.running
        stack.wait_terminal(task_ids, timeout_s=REDELIVERY_TIMEOUT_S)

        assert_exactly_once(stack, task_ids)
        states = [event["state"] for event in stack.events_by_task()[victim_task]]
        assert states.count("STARTED") == 2, f"the killed job should have started twice: {states}"
        assert (states[0], states[-1]) == ("PENDING", "SUCCESS")
        foreign.reload()
        assert foreign.status == "running", "a container of another platform instance was touched"
    finally:
        foreign.remove(force=True)
