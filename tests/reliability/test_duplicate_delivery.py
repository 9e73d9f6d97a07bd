"""The same message delivered twice: the scheduler and the results writer each act on it once."""

from __future__ import annotations

import json

import pytest
from backtest_core.contracts import (
    RESULTS_EVENTS_CONSUMER,
    SCHEDULER_RUNS_CONSUMER,
    Stream,
    Subject,
    new_id,
)
from backtest_testinfra.stack import small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_run_report_and_backtest_events_delivered_twice_leave_one_terminal_event_and_one_document(
    stack_factory,
):
    stack = stack_factory(runners=1, slots=1)
    [task_id] = stack.submit_nats([small_config(7)])
    stack.wait_terminal([task_id], timeout_s=60)
    [stored] = assert_exactly_once(stack, [task_id])
    events = stack.events_by_task()[task_id]

    # The runner's success report again, under a new message id so JetStream stores and delivers it.
    [report] = [
        data
        for subject, data, _ in stack.stream_messages(Stream.RUNS)
        if subject == Subject.run(task_id) and json.loads(data)["kind"] == "succeeded"
    ]
    assert stack.publish_raw(Subject.run(task_id), report, Stream.RUNS, new_id()) is False
    stack.wait_consumer_idle(Stream.RUNS, SCHEDULER_RUNS_CONSUMER)
    assert stack.events_by_task()[task_id] == events, "the scheduler must not emit a second outcome"

    # The SUCCESS event under its own id is dropped by JetStream's duplicate window ...
    success, started = events[-1], events[1]
    assert (success["state"], started["state"]) == ("SUCCESS", "STARTED")
    raw_success = json.dumps(success).encode()
    assert stack.publish_raw(Subject.event(task_id), raw_success, Stream.EVENTS, success["message_id"])
    # ... and under new ids (a redelivery, and a stale STARTED) reaches the results writer, which keeps
    # the stored document as it was.
    assert stack.publish_raw(Subject.event(task_id), raw_success, Stream.EVENTS, new_id()) is False
    raw_started = json.dumps(started).encode()
    assert stack.publish_raw(Subject.event(task_id), raw_started, Stream.EVENTS, new_id()) is False
    stack.wait_consumer_idle(Stream.EVENTS, RESULTS_EVENTS_CONSUMER)

    assert stack.terminal_event_counts([task_id]) == {task_id: 2}  # the copy we injected is in the stream
    assert stack.documents() == [stored]
