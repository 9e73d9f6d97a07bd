"""The results writer is down for a while: events wait in JetStream and are persisted once it is back."""

from __future__ import annotations

import pytest
from backtest_testinfra.stack import small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_events_wait_in_jetstream_while_the_results_writer_is_stopped_and_land_after_restart(stack_factory):
    stack = stack_factory(runners=2, slots=1)
    stack.services["results"].stop()
    task_ids = stack.submit_nats([small_config(i) for i in range(4)])

    stack.wait_terminal_events(task_ids, timeout_s=90)
    assert stack.documents(task_ids) == [], "nothing is persisted while the writer is stopped"

    stack.services["results"].start()
    stack.wait_terminal(task_ids, timeout_s=60)

    docs = assert_exactly_once(stack, task_ids)
    events = stack.events_by_task()
    assert [doc["seq"] for doc in docs] == [len(events[doc["_id"]]) for doc in docs]
