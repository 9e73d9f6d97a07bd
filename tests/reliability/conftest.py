"""Fixtures of the fault and load tests: a stack per test on its own nats-server (file storage).

``stack_factory(**options)`` builds a :class:`Stack` (the test kit's, tests/fixtures/stack.py) on a
private nats-server that the test may restart (``stack.nats_server``), the session's MongoDB-compatible
server unless ``private_mongo=True`` asks for one of its own (``stack.mongo_server``, restartable), and
the session's sandbox image; the shipped BTCUSD candles are loaded and every service is started. After
the test every service is stopped, the database dropped, and the test fails if a sandbox container of
the stack is left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backtest_testinfra import MongoEmulator, NatsServer
from backtest_testinfra.stack import Stack, StackError

StackFactory = Callable[..., Stack]


@pytest.fixture
def stack_factory(
    nats_server_factory: Callable[[], NatsServer],
    mongo_server_factory: Callable[..., MongoEmulator],
    mongo_uri: str,
    mongo_readonly_uri: str,
    sandbox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StackFactory]:
    """Yield a function that starts a whole stack; everything it started is stopped after the test."""
    stacks: list[Stack] = []

    def start(*, private_mongo: bool = False, **options: Any) -> Stack:
        server = nats_server_factory()
        mongo = mongo_server_factory() if private_mongo else None
        stack = Stack(
            work=tmp_path_factory.mktemp("stack"),
            nats_url=server.url,
            mongo_uri=mongo.uri if mongo else mongo_uri,
            mongo_readonly_uri=mongo.readonly_uri if mongo else mongo_readonly_uri,
            sandbox_image=sandbox_image,
            nats_server=server,
            mongo_server=mongo,
            **options,
        )
        stacks.append(stack)
        try:
            stack.launch()
        except StackError as exc:
            pytest.fail(str(exc), pytrace=False)
        return stack

    yield start
    leftovers = []
    for stack in stacks:
        stack.close()
        leftovers += stack.remove_containers()
    assert leftovers == [], f"sandbox containers left behind: {leftovers}"
