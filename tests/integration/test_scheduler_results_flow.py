"""Scheduler + results writer on a private NATS JetStream and the MongoDB-compatible server.

The test plays the gateway (publishes SubmitBacktest) and the runner (pulls the job from the
`runner` work-queue consumer, runs the real engine on candles read from MongoDB, reports on
BACKTEST_RUNS); the scheduler and results services run in-process from their `create_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from backtest_core.contracts import (
    RUNNER_JOBS_CONSUMER,
    BacktestEvent,
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunStarted,
    RunSucceeded,
    Stream,
    Subject,
    SubmitBacktest,
    new_id,
)
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.engine.run import run_backtest
from backtest_core.io.data_files import read_candle_file
from backtest_core.model.config import BacktestConfig
from backtest_marketdata import MongoCandleStore
from backtest_results.main import create_app as create_results
from backtest_results.settings import Settings as ResultsSettings
from backtest_scheduler.main import create_app as create_scheduler
from backtest_scheduler.settings import Settings as SchedulerSettings
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter
from pymongo.database import Database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "bitfinex"
    / "spot"
    / "monthly"
    / "klines"
    / "ETHUSD"
    / "1d"
)
EVENTS = TypeAdapter[BacktestEvent](BacktestEvent)
MAX_ATTEMPTS = 2


@pytest.fixture
async def platform(
    nats_server_factory: Callable[[], Any], mongo_uri: str, mongo_db: Database[Any]
) -> AsyncIterator[tuple[Client, JetStreamContext]]:
    """Start NATS, load ETHUSD 2019 daily candles, start the scheduler and the results writer."""
    server = nats_server_factory()
    store = MongoCandleStore(mongo_db)
    store.ensure_indexes()
    for month in range(1, 13):
        store.write(read_candle_file(DATA / f"ETHUSD-1d-2019-{month:02d}.csv"))
    scheduler = create_scheduler(
        SchedulerSettings(
            nats_url=server.url,
            mongodb_uri=mongo_uri,
            mongodb_database=mongo_db.name,
            max_attempts=MAX_ATTEMPTS,
            retry_base_delay_s=0.05,
        )
    )
    results = create_results(
        ResultsSettings(nats_url=server.url, mongodb_uri=mongo_uri, mongodb_database=mongo_db.name)
    )
    await scheduler.start()
    await results.start()
    client = await nats.connect(server.url)
    try:
        yield client, client.jetstream()
    finally:
        await client.close()
        await results.stop()
        await scheduler.stop()


def eth_config(**changes: object) -> BacktestConfig:
    base: dict[str, object] = {
        "strategy": "sma_cross",
        "params": {"fast": 5, "slow": 20},
        "symbols": ["ETHUSD"],
        "interval": "1d",
        "start": "2019-01-01T00:00:00Z",
        "end": "2020-01-01T00:00:00Z",
    }
    return BacktestConfig.model_validate(base | changes)


async def submit(js: JetStreamContext, config: BacktestConfig, user_id: str = "alice") -> str:
    command = SubmitBacktest(task_id=new_id(), user_id=user_id, config=config)
    await js.publish(
        Subject.SUBMIT,
        command.model_dump_json().encode(),
        stream=Stream.COMMANDS.value,
        headers={"Nats-Msg-Id": command.message_id},
    )
    return command.task_id


async def runner_subscription(js: JetStreamContext, max_deliver: int = 3, ack_wait_s: float = 30.0) -> Any:
    config = ConsumerConfig(max_deliver=max_deliver, ack_wait=ack_wait_s, max_ack_pending=1)
    return await js.pull_subscribe(
        Subject.JOB_RUN, RUNNER_JOBS_CONSUMER, stream=Stream.JOBS.value, config=config
    )


async def report(js: JetStreamContext, message: Any) -> None:
    await js.publish(
        Subject.run(message.task_id), message.model_dump_json().encode(), stream=Stream.RUNS.value
    )


async def document_in_state(db: Database[Any], task_id: str, state: str, seq: int = 0) -> dict[str, Any]:
    """Wait for the task's document to be in `state` with at least event number `seq` stored."""
    async with asyncio.timeout(30):
        while True:
            doc = await asyncio.to_thread(db[BACKTESTS_COLLECTION].find_one, {"_id": task_id})
            if doc is not None and doc["state"] == state and doc["seq"] >= seq:
                return doc
            await asyncio.sleep(0.05)


async def task_events(js: JetStreamContext, task_id: str) -> list[BacktestEvent]:
    sub = await js.subscribe(Subject.event(task_id), ordered_consumer=True)
    events: list[BacktestEvent] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=1.0)
            events.append(EVENTS.validate_json(msg.data))
    except nats.errors.TimeoutError:
        return events
    finally:
        await sub.unsubscribe()


async def test_submit_runs_once_persists_success_and_the_same_config_is_then_served_from_cache(
    platform: tuple[Client, JetStreamContext], mongo_db: Database[Any]
) -> None:
    _, js = platform
    runner = await runner_subscription(js)
    first = await submit(js, eth_config())

    [msg] = await runner.fetch(1, timeout=10)
    job = RunBacktestJob.model_validate_json(msg.data)
    candles = {"ETHUSD": MongoCandleStore(mongo_db).load("ETHUSD", "1d")}
    await report(js, RunStarted(task_id=first, attempt=job.attempt, runner_id="test-runner"))
    await document_in_state(mongo_db, first, "STARTED", seq=2)
    # a runner reports one at a time; the scheduler's pull batch may take two reports at once and
    # drop a progress it decides after a later one (stale progress), so each is awaited here
    for seq, fraction in ((3, 0.3), (4, 0.6)):
        await report(js, RunProgressed(task_id=first, attempt=1, fraction=fraction, stage="proposals"))
        await document_in_state(mongo_db, first, "PROGRESS", seq=seq)
    result = run_backtest(job.config, candles)
    await report(js, RunSucceeded(task_id=first, attempt=1, result=result, duration_ms=100))
    await msg.ack()

    stored = await document_in_state(mongo_db, first, "SUCCESS")
    assert (job.task_id, job.attempt, stored["seq"]) == (first, 1, 5)
    assert stored["cache_key"] == job.cache_key and len(job.cache_key) == 64
    assert stored["result"]["metrics"]["final_equity"] == result.metrics.final_equity
    assert stored["result"]["metrics"]["trade_count"] == result.metrics.trade_count == len(result.trades)
    assert [e.seq for e in await task_events(js, first)] == [1, 2, 3, 4, 5]

    second = await submit(js, eth_config(parallel_symbols=4))
    cached = await document_in_state(mongo_db, second, "SUCCESS")

    assert (cached["cached_from"], cached["seq"], cached["cache_key"]) == (first, 2, job.cache_key)
    assert cached["result"]["metrics"]["final_equity"] == result.metrics.final_equity

    foreign = await document_in_state(mongo_db, await submit(js, eth_config(), user_id="bob"), "SUCCESS")
    assert (foreign["user_id"], foreign["cached_from"], foreign["seq"]) == ("bob", None, 2)
    assert foreign["result"]["metrics"]["final_equity"] == result.metrics.final_equity
    assert (await js.stream_info(Stream.JOBS.value)).state.messages == 0  # no second job queued


async def test_infrastructure_faults_retry_then_dead_letter_with_history(
    platform: tuple[Client, JetStreamContext], mongo_db: Database[Any]
) -> None:
    _, js = platform
    runner = await runner_subscription(js)
    task_id = await submit(js, eth_config(params={"fast": 3, "slow": 9}))
    fault = Failure(reason=FailureReason.INFRASTRUCTURE, message="docker: connection refused")

    attempts = []
    for _ in range(MAX_ATTEMPTS):
        [msg] = await runner.fetch(1, timeout=10)
        job = RunBacktestJob.model_validate_json(msg.data)
        attempts.append(job.attempt)
        await report(js, RunFailed(task_id=task_id, attempt=job.attempt, failure=fault))
        await msg.ack()

    stored = await document_in_state(mongo_db, task_id, "FAILURE")
    assert attempts == [1, 2]
    assert stored["failure"]["reason"] == "dead_letter"
    assert [e.state.value for e in await task_events(js, task_id)] == ["PENDING", "RETRY", "FAILURE"]
    dead = await js.get_last_msg(Stream.DEAD.value, Subject.DEAD_JOB)
    assert b'"attempt":2' in dead.data and dead.data.count(b'"infrastructure"') == 2


async def test_a_job_whose_runner_never_acks_is_dead_lettered_after_max_deliveries(
    platform: tuple[Client, JetStreamContext], mongo_db: Database[Any]
) -> None:
    _, js = platform
    runner = await runner_subscription(js, max_deliver=2, ack_wait_s=0.5)
    task_id = await submit(js, eth_config(params={"fast": 4, "slow": 12}))

    for _ in range(2):  # a runner takes the job and dies, twice
        [msg] = await runner.fetch(1, timeout=10)
        assert RunBacktestJob.model_validate_json(msg.data).task_id == task_id
    with pytest.raises(nats.errors.TimeoutError):
        await runner.fetch(1, timeout=2)  # nothing left to deliver: JetStream gave up

    stored = await document_in_state(mongo_db, task_id, "FAILURE")
    assert stored["failure"]["reason"] == "dead_letter"
    assert "delivered 2 times" in stored["failure"]["message"]
    with pytest.raises(NotFoundError):
        await js.get_last_msg(Stream.JOBS.value, Subject.JOB_RUN)  # the dead job left the work queue
