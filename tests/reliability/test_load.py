"""200 backtests in a burst through the gateway with 2 runners: all finish, none lost or duplicated.

Prints throughput and latency percentiles (submit -> terminal document in MongoDB); no timing asserts.
Then 20 of the same configs again: served from the cache, without a container.
"""

from __future__ import annotations

import time

import pytest
from backtest_testinfra.stack import percentiles, small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BURST = 200
CACHED = 20


def test_a_burst_of_200_backtests_through_the_gateway_each_finishes_once(stack_factory):
    stack = stack_factory(runners=2, slots=2, gateway=True)
    configs = [small_config(i, months=6) for i in range(BURST)]

    submitted = stack.submit_http(configs)
    submit_done = time.monotonic()
    seen = stack.wait_terminal([task_id for task_id, _ in submitted], timeout_s=420, poll_s=0.25)

    task_ids = [task_id for task_id, _ in submitted]
    assert len(set(task_ids)) == BURST
    assert_exactly_once(stack, task_ids)
    latencies = [seen[task_id] - sent for task_id, sent in submitted]
    first_sent = min(sent for _, sent in submitted)
    wall_s = max(seen.values()) - first_sent
    shown = ", ".join(f"{k} {v:.2f} s" for k, v in percentiles(latencies).items())
    print(
        f"\nload: {BURST} backtests, 2 runners x 2 slots; submitted in {submit_done - first_sent:.2f} s; "
        f"all persisted after {wall_s:.1f} s = {BURST / wall_s:.2f} backtests/s; latency {shown}"
    )

    again = stack.submit_http(configs[:CACHED])
    stack.wait_terminal([task_id for task_id, _ in again], timeout_s=60)
    docs = assert_exactly_once(stack, task_ids + [task_id for task_id, _ in again])
    by_id = {doc["_id"]: doc for doc in docs}
    assert [by_id[task_id]["cached_from"] for task_id, _ in again] == task_ids[:CACHED]
    events = stack.events_by_task()
    assert {tuple(e["state"] for e in events[task_id]) for task_id, _ in again} == {("PENDING", "SUCCESS")}
