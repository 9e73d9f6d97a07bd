"""The platform on a three-node NATS cluster (R3 streams and KV buckets): kill -9 of one node under
load, every backtest still ends in exactly one SUCCESS (nothing lost, no duplicate result)."""

from __future__ import annotations

import pytest
from backtest_core.contracts import Stream
from backtest_testinfra.stack import Stack, StackError, small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASKS = 30


def test_a_cluster_node_killed_mid_load_loses_no_backtest_and_duplicates_none(
    nats_cluster_factory, mongo_uri, mongo_readonly_uri, sandbox_image, tmp_path
):
    cluster = nats_cluster_factory()
    stack = Stack(
        work=tmp_path / "stack",
        nats_url=cluster.url,
        mongo_uri=mongo_uri,
        mongo_readonly_uri=mongo_readonly_uri,
        sandbox_image=sandbox_image,
        runners=2,
        slots=2,
        stream_replicas=3,
    )
    try:
        stack.load_candles()
        stack.start()

        async def replicas(js):  # type: ignore[no-untyped-def]
            return {
                s: (await js.stream_info(s.value)).config.num_replicas for s in (Stream.JOBS, Stream.EVENTS)
            }

        assert stack.with_js(replicas) == {Stream.JOBS: 3, Stream.EVENTS: 3}
        task_ids = stack.submit_nats([small_config(i) for i in range(TASKS)])
        stack.wait_event_count(TASKS + 5, timeout_s=60)  # PENDINGs and the first STARTEDs are in
        cluster.nodes[1].kill()
        stack.wait_terminal(task_ids, timeout_s=120)
        failed = [
            (d["_id"], d["state"], d.get("failure"))
            for d in stack.documents(task_ids)
            if d["state"] != "SUCCESS"
        ]
        assert failed == [], f"{failed}\n{stack.log_tails(60)}"
        assert_exactly_once(stack, task_ids)
        assert all(service.running for service in stack.services.values()), stack.log_tails()
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        stack.close()
        leftovers = stack.remove_containers()
        assert leftovers == [], f"sandbox containers left behind: {leftovers}"
