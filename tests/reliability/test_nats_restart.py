"""nats-server restarts (file storage) while backtests run: services reconnect and no job is lost."""

from __future__ import annotations

import pytest
from backtest_testinfra.stack import small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_backtests_in_flight_across_a_nats_restart_each_finish_once(stack_factory):
    stack = stack_factory(runners=2, slots=1)
    before = stack.submit_nats([small_config(i, months=24) for i in range(4)])
    stack.wait_for_container()

    stack.nats_server.restart()
    after = stack.submit_nats([small_config(i, months=24) for i in range(4, 6)])
    stack.wait_terminal(before + after, timeout_s=150)

    assert_exactly_once(stack, before + after)
    assert all(service.running for service in stack.services.values()), stack.log_tails()
