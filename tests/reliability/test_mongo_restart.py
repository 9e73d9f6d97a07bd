"""The MongoDB-compatible server restarts while backtests run: writes and reads are retried."""

from __future__ import annotations

import pytest

from .checks import assert_exactly_once
from .stack import small_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_backtests_in_flight_across_a_mongo_restart_each_finish_once(stack_factory, mongo_server_factory):
    mongo = mongo_server_factory()
    stack = stack_factory(mongo=mongo, runners=2, slots=1)
    before = stack.submit_nats([small_config(i, months=24) for i in range(4)])
    stack.wait_for_container()

    mongo.restart()
    after = stack.submit_nats([small_config(i, months=24) for i in range(4, 6)])
    stack.wait_terminal(before + after, timeout_s=150)

    assert_exactly_once(stack, before + after)
    assert all(service.running for service in stack.services.values()), stack.log_tails()
