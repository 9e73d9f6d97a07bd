"""Two schedulers at once, one killed with kill -9 mid-load and never restarted: the other finishes
every backtest, each in exactly one SUCCESS, with no two events of one task sharing a seq.

Both schedulers pull from the same durable consumers and store task state in one KV bucket by
compare-and-set on the entry's revision; what the killed one had pulled and not acked comes back to
the survivor after the consumer's ack wait (30 s).
"""

from __future__ import annotations

import pytest
from backtest_testinfra.stack import Stack, small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASKS = 30
REDELIVERY_TIMEOUT_S = 180.0


def handled_messages(stack: Stack, name: str) -> int:
    """Count the bus messages a scheduler process finished handling (FastStream logs 'Processed')."""
    return stack.services[name].log_path.read_text(errors="replace").count('"message": "Processed"')


def test_two_schedulers_one_killed_mid_load_every_backtest_ends_once(stack_factory):
    stack = stack_factory(runners=2, slots=2, schedulers=2)
    task_ids = stack.submit_nats([small_config(i, months=12) for i in range(TASKS)])
    stack.wait_event_count(TASKS + 10)  # accepted, and reports flowing through both schedulers
    before_kill = {name: handled_messages(stack, name) for name in ("scheduler", "scheduler-1")}
    stack.services["scheduler-1"].kill()

    stack.wait_terminal(task_ids, timeout_s=REDELIVERY_TIMEOUT_S)

    print(f"\nmessages handled by each scheduler before the kill: {before_kill}")
    assert all(count > 0 for count in before_kill.values()), (
        f"both schedulers must share the load: {before_kill}"
    )
    assert_exactly_once(stack, task_ids)
    events = stack.events_by_task()
    forks = {
        t: [e["seq"] for e in events[t]]
        for t in task_ids
        if len({e["seq"] for e in events[t]}) != len(events[t])
    }
    assert forks == {}, f"tasks with two events of the same seq: {forks}"
    assert stack.services["scheduler"].running, stack.log_tails()
