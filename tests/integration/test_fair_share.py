"""Fair share on the real parts: scheduler and runner (create_app) on a private NATS JetStream, Docker
sandboxes and the MongoDB-compatible server.

Alice fills the platform with backtests that never end on their own; Bob's short backtest still runs
at once in the slot Alice may not take, and Alice's waiting backtests, cancelled, never start.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import nats
import pytest
from backtest_core.contracts import (
    BacktestEvent,
    CancelBacktest,
    Stream,
    Subject,
    SubmitBacktest,
    TaskState,
    new_id,
)
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_marketdata import MongoCandleStore
from backtest_runner.main import create_app as create_runner
from backtest_runner.sandbox.docker_sandbox import LABEL_ROLE, LABEL_RUNNER, ROLE_SANDBOX
from backtest_runner.settings import RunnerSettings
from backtest_scheduler.main import create_app as create_scheduler
from backtest_scheduler.settings import Settings as SchedulerSettings
from backtest_testinfra import shipped_candles
from nats.js import JetStreamContext
from pydantic import TypeAdapter
from pymongo.database import Database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = TypeAdapter[BacktestEvent](BacktestEvent)
SLEEPER = (
    "import time\nfrom backtest_core.strategy import BaseStrategy\n\n\n"
    "class Sleeper(BaseStrategy):  # variant {n}\n    def decide(self, df, interval, **p):\n"
    "        time.sleep(3600)\n"
)
WAIT_S = 90.0  # far below the sandboxes' wall clock (600 s): Bob must not wait for Alice's jobs to end


@pytest.fixture
def runner_id(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique runner id; afterwards remove (and assert there are none) sandboxes left by it."""
    rid = f"test-fair-{os.getpid()}-{os.urandom(4).hex()}"
    yield rid
    label = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={rid}"]
    left = docker_client.containers.list(all=True, filters={"label": label})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []


@pytest.fixture
async def js(
    nats_server_factory: Callable[[], Any],
    mongo_uri: str,
    mongo_readonly_uri: str,
    mongo_db: Database[Any],
    sandbox_image: str,
    runner_id: str,
    tmp_path: Path,
) -> AsyncIterator[JetStreamContext]:
    """Start a scheduler (2 slots in all, 1 per user) and one runner with 2 slots on BTCUSD candles."""
    server = nats_server_factory()
    store = MongoCandleStore(mongo_db)
    store.ensure_indexes()
    store.write(shipped_candles("BTCUSD"))
    scheduler = create_scheduler(
        SchedulerSettings(
            nats_url=server.url,
            mongodb_uri=mongo_uri,
            mongodb_database=mongo_db.name,
            max_in_flight=2,
            per_user_in_flight=1,
        )
    )
    runner = create_runner(
        RunnerSettings(
            nats_url=server.url,
            mongodb_uri=mongo_readonly_uri,
            mongodb_database=mongo_db.name,
            runner_id=runner_id,
            slots=2,
            sandbox_image=sandbox_image,
            work_dir=tmp_path / "jobs",
            memory_mb=384,
            wall_clock_s=600.0,
            heartbeat_interval_s=1.0,
            shutdown_grace_s=5.0,
        )
    )
    await scheduler.start()
    service = await runner.start()
    loop = asyncio.create_task(service.run())
    client = await nats.connect(server.url)
    try:
        yield client.jetstream()
    finally:
        await client.close()
        await runner.stop()
        await loop
        await scheduler.stop()


async def send(js: JetStreamContext, command: SubmitBacktest | CancelBacktest) -> None:
    subject = Subject.SUBMIT if isinstance(command, SubmitBacktest) else Subject.CANCEL
    await js.publish(
        subject,
        command.model_dump_json().encode(),
        stream=Stream.COMMANDS.value,
        headers={"Nats-Msg-Id": command.message_id},
    )


async def submit(js: JetStreamContext, user: str, strategy: str | SourceStrategy) -> str:
    config = BacktestConfig.model_validate(
        {
            "strategy": strategy,
            "params": {"fast": 5, "slow": 20} if strategy == "sma_cross" else {},
            "symbols": ["BTCUSD"],
            "start": "2019-01-01T00:00:00Z",
            "end": "2020-01-01T00:00:00Z",
        }
    )
    command = SubmitBacktest(task_id=new_id(), user_id=user, config=config)
    await send(js, command)
    return command.task_id


async def states_until(js: JetStreamContext, task_id: str, last: TaskState) -> list[TaskState]:
    """Return the task's event states from the start until (and with) the first `last`."""
    sub = await js.subscribe(Subject.event(task_id), ordered_consumer=True)
    states: list[TaskState] = []
    try:
        async with asyncio.timeout(WAIT_S):
            while not states or states[-1] is not last:
                msg = await sub.next_msg(timeout=WAIT_S)
                states.append(EVENTS.validate_json(msg.data).state)
    except TimeoutError as error:
        shown = [s.value for s in states]
        raise AssertionError(
            f"task {task_id} was to reach {last.value} within {WAIT_S} s, was {shown}"
        ) from error
    finally:
        await sub.unsubscribe()
    return states


async def test_one_users_endless_jobs_leave_a_slot_for_another_users_short_job(js: JetStreamContext) -> None:
    alice = [await submit(js, "alice", SourceStrategy(source=SLEEPER.format(n=n))) for n in range(3)]
    started = await states_until(js, alice[0], TaskState.STARTED)  # alice's first job holds one slot
    sent = time.monotonic()
    bob = await submit(js, "bob", "sma_cross")

    bob_states = await states_until(js, bob, TaskState.SUCCESS)
    print(f"\nfair share: bob's backtest, submit -> SUCCESS {time.monotonic() - sent:.2f} s beside alice's 3")

    assert started == [TaskState.PENDING, TaskState.STARTED]
    assert bob_states[0] is TaskState.PENDING and bob_states[-1] is TaskState.SUCCESS
    for task_id in reversed(alice):  # the waiting ones first, so none of them is admitted meanwhile
        await send(js, CancelBacktest(task_id=task_id, user_id="alice"))
    ended = [await states_until(js, task_id, TaskState.CANCELLED) for task_id in alice]
    assert ended[0][:2] == [TaskState.PENDING, TaskState.STARTED] and ended[0][-1] is TaskState.CANCELLED
    assert ended[1:] == [[TaskState.PENDING, TaskState.CANCELLED]] * 2  # never ran
