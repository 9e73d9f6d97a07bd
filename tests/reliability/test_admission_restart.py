"""kill -9 of the scheduler while backtests wait for a runner slot: the restarted one loses none of them,
and the slot limit holds throughout (one backtest runs at a time, as SCHEDULER_MAX_IN_FLIGHT=1 says)."""

from __future__ import annotations

import json

import pytest
from backtest_core.contracts import Stream
from backtest_testinfra.stack import small_config
from backtest_testinfra.stack_clients import TERMINAL

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ONE_SLOT = {"SCHEDULER_MAX_IN_FLIGHT": "1", "SCHEDULER_PER_USER_IN_FLIGHT": "1"}


def most_running_at_once(events: list[dict[str, object]]) -> int:
    """Return the most tasks between their first STARTED and their terminal event, in stream order."""
    running: set[object] = set()
    most = 0
    for event in events:
        if event["state"] == "STARTED":
            running.add(event["task_id"])
        elif event["state"] in TERMINAL:
            running.discard(event["task_id"])
        most = max(most, len(running))
    return most


def test_scheduler_killed_while_backtests_wait_for_a_slot_every_one_runs_once_one_at_a_time(stack_factory):
    stack = stack_factory(runners=1, slots=2, overrides={"scheduler": ONE_SLOT})
    alice = stack.submit_nats([small_config(i, months=24) for i in range(4)], user="alice")
    bob = stack.submit_nats([small_config(i, months=24) for i in range(4, 6)], user="bob")
    stack.wait_for_container()  # one backtest runs, five wait in the admission state

    stack.services["scheduler"].kill()
    stack.services["scheduler"].start()
    stack.wait_terminal(alice + bob, timeout_s=240)

    assert_exactly_once(stack, alice + bob)
    events = [json.loads(data) for _, data, _ in stack.stream_messages(Stream.EVENTS)]
    assert most_running_at_once(events) == 1  # the runner has 2 slots; admission let 1 be used
    started = [e["user_id"] for e in events if e["state"] == "STARTED"]
    assert sorted(started) == ["alice"] * 4 + ["bob"] * 2
