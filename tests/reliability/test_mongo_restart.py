"""The MongoDB-compatible server goes down and comes back while backtests run: reads and writes wait
(the driver's retryable reads/writes, the services' nak-and-redeliver) and nothing is lost."""

from __future__ import annotations

import time

import pytest
from backtest_testinfra.stack import small_config

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 3.0


def test_backtests_submitted_before_and_during_a_mongo_outage_each_finish_once(stack_factory):
    stack = stack_factory(private_mongo=True, runners=2, slots=1)
    before = stack.submit_nats([small_config(i, months=24) for i in range(4)])
    stack.wait_for_container()

    stack.mongo_server.stop()
    during = stack.submit_nats([small_config(i, months=24) for i in range(4, 6)])
    time.sleep(OUTAGE_S)
    stack.mongo_server.start()
    stack.wait_terminal(before + during, timeout_s=150)

    assert_exactly_once(stack, before + during)
    assert all(service.running for service in stack.services.values()), stack.log_tails()
