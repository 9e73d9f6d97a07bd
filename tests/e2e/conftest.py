"""The whole platform for the e2e tests: gateway, scheduler, sweeper, runner and results as processes over
the session's NATS JetStream, MongoDB-compatible server and Docker, with the repo's real BTCUSD and
ETHUSD daily candles loaded (the test kit's `Stack`, tests/fixtures/stack.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from backtest_core.contracts import new_id
from backtest_testinfra.stack import Stack, StackError

SYMBOLS = ("BTCUSD", "ETHUSD")


@pytest.fixture(scope="module")
def platform(
    request: pytest.FixtureRequest,
    nats_url: str,
    mongo_uri: str,
    mongo_readonly_uri: str,
    sandbox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Load the real candles into a fresh database and start the five services against it.

    One runner of 2 slots; admission and the gateway's rate limits are the services' defaults. A test
    module may set `PLATFORM_ENV: dict[str, str]` to override the services' settings for its own
    platform, e.g. `{"RUNNER_WALL_CLOCK_S": "8", "RUNNER_MEMORY_MB": "256", "RUNNER_SLOTS": "4"}`.
    """
    stack = Stack(
        work=tmp_path_factory.mktemp("e2e"),
        nats_url=nats_url,
        mongo_uri=mongo_uri,
        mongo_readonly_uri=mongo_readonly_uri,
        sandbox_image=sandbox_image,
        runners=1,
        slots=2,
        gateway=True,
        sweeper=True,
        symbols=SYMBOLS,
        deployed_limits=True,
        env=getattr(request.module, "PLATFORM_ENV", {}),
        database=f"e2e_{new_id()[:12]}",
    )
    try:
        try:
            stack.launch()
        except StackError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield stack
    finally:
        stack.close()
