"""kill -9 of the scheduler, four times, while 30 backtests run: no result is lost, no task wedged.

The scheduler stores a transition (with what it must publish) before publishing it, so a kill between
the two leaves the events to the restarted scheduler; a kill before the store leaves the run report
unacknowledged, and JetStream redelivers it after its ack wait.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from backtest_testinfra.stack import Stack, small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASKS = 30
KILLS = 4  # every second one while nats-server is frozen (SIGSTOP)
REDELIVERY_TIMEOUT_S = 180.0  # unacked reports come back after the consumer's ack wait (30 s)


def kill_while_nats_is_frozen(stack: Stack) -> None:
    """SIGSTOP nats-server, kill -9 the scheduler, SIGCONT: the scheduler dies waiting on a reply,
    in the middle of a plan (its last request may still reach the server)."""
    pid = stack.nats_server.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.3)
        stack.services["scheduler"].kill()
    finally:
        os.kill(pid, signal.SIGCONT)


def test_scheduler_killed_under_load_every_backtest_ends_once_with_its_result(stack_factory):
    stack = stack_factory(runners=2, slots=2)
    task_ids = stack.submit_nats([small_config(i, months=12) for i in range(TASKS)])
    scheduler = stack.services["scheduler"]
    rng = random.Random()
    pauses = []
    for kill in range(KILLS):
        stack.wait_event_count(TASKS + 8 * (kill + 1))  # accepted, then reports flowing
        pauses.append(round(rng.uniform(0.0, 0.3), 3))
        time.sleep(pauses[-1])
        if kill % 2:
            kill_while_nats_is_frozen(stack)
        else:
            scheduler.kill()
        scheduler.start()

    stack.wait_terminal(task_ids, timeout_s=REDELIVERY_TIMEOUT_S)

    log = scheduler.log_path.read_text(errors="replace")
    print(
        f"\nscheduler killed {KILLS} times, pauses before each kill (s): {pauses}; outboxes published "
        f"again by a restarted scheduler: {log.count('publishing the outbox')}; redelivered reports "
        f"ignored as applied: {log.count('was applied already')}"
    )
    assert_exactly_once(stack, task_ids)
    events = stack.events_by_task()
    last_states = {task_id: max(events[task_id], key=lambda e: e["seq"])["state"] for task_id in task_ids}
    assert set(last_states.values()) == {"SUCCESS"}, last_states
    forks = {
        t: [e["seq"] for e in events[t]]
        for t in task_ids
        if len({e["seq"] for e in events[t]}) != len(events[t])
    }
    assert forks == {}, f"tasks with two events of the same seq: {forks}"
