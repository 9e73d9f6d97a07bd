"""The results writer on real NATS JetStream and the MongoDB-compatible server.

Events are published to BACKTEST_EVENTS the way the scheduler does (JetStream publish with
Nats-Msg-Id); the running `create_app` writer stores them; the test waits until the durable consumer
has acknowledged every message, then reads the document back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from backtest_core.contracts import RESULTS_EVENTS_CONSUMER, BacktestEvent, Stream, Subject, new_id
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_results.adapters.mongo_backtest_writer import MongoBacktestWriter
from backtest_results.documents import WriteOutcome
from backtest_results.main import create_app
from backtest_results.settings import Settings
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.database import Database

from ..conftest import lifecycle

pytestmark = pytest.mark.integration


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(nats_url)
    yield client.jetstream()
    await client.close()


@pytest.fixture
async def running_writer(nats_url: str, mongo_uri: str, mongo_db: Database[Any]) -> AsyncIterator[None]:
    settings = Settings(nats_url=nats_url, mongodb_uri=mongo_uri, mongodb_database=mongo_db.name)
    app = create_app(settings)
    await app.start()
    yield
    await app.stop()


async def publish(js: JetStreamContext, events: list[BacktestEvent], *, fresh_ids: bool = False) -> int:
    """Publish events in the given order; return the stream sequence of the last one."""
    seq = 0
    for event in events:
        message_id = new_id() if fresh_ids else event.message_id  # a fresh id defeats JetStream's de-dup
        ack = await js.publish(
            Subject.event(event.task_id),
            event.model_dump_json().encode(),
            stream=Stream.EVENTS.value,
            headers={"Nats-Msg-Id": message_id},
        )
        seq = ack.seq
    return seq


async def wait_until_acknowledged(js: JetStreamContext, stream_seq: int) -> None:
    """Wait until the results-writer consumer has acked everything up to `stream_seq`."""
    async with asyncio.timeout(30):
        while True:
            info = await js.consumer_info(Stream.EVENTS.value, RESULTS_EVENTS_CONSUMER)
            if info.ack_floor.stream_seq >= stream_seq and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.05)


@pytest.mark.usefixtures("running_writer")
async def test_a_lifecycle_is_persisted_as_one_success_document(
    js: JetStreamContext, mongo_db: Database[Any]
) -> None:
    task_id = new_id()
    last = await publish(js, lifecycle(task_id))
    await wait_until_acknowledged(js, last)

    documents = list(mongo_db[BACKTESTS_COLLECTION].find({"_id": task_id}))
    assert len(documents) == 1
    [document] = documents
    assert (document["state"], document["seq"], document["user_id"]) == ("SUCCESS", 5, "alice")
    assert document["result"]["metrics"]["final_equity"] == 1_085_000.0
    assert document["result"]["rejected_proposals"] == 3
    assert len(document["result"]["equity_curve"]) == 2
    assert document["config"]["symbols"] == ["BTCUSDT"]
    assert document["cache_key"] == "k" * 64
    assert document["progress"] == {"fraction": 1.0, "stage": "done"}


@pytest.mark.usefixtures("running_writer")
async def test_duplicate_and_out_of_order_redelivery_leave_the_newest_state(
    js: JetStreamContext, mongo_db: Database[Any]
) -> None:
    task_id = new_id()
    accepted, started, early, late, _ = lifecycle(task_id)
    await publish(js, [accepted, started, late])
    last = await publish(js, [early, late, started, accepted], fresh_ids=True)
    await wait_until_acknowledged(js, last)

    [document] = list(mongo_db[BACKTESTS_COLLECTION].find({"_id": task_id}))
    assert (document["state"], document["seq"]) == ("PROGRESS", 4)
    assert document["progress"] == {"fraction": 0.9, "stage": "portfolio"}
    assert document["cache_key"] == "k" * 64
    assert document["last_event_id"] == late.message_id


async def test_the_writer_uses_majority_writes_and_reports_stale_events(
    mongo_uri: str, mongo_db: Database[Any]
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        writer = MongoBacktestWriter(client[mongo_db.name][BACKTESTS_COLLECTION])
        await writer.ensure_indexes()
        accepted, started, early, late, succeeded = lifecycle()

        outcomes = [await writer.apply(e) for e in (accepted, late, early, started, succeeded, succeeded)]

        assert writer.write_concern.document == {"w": "majority"}
        assert outcomes == [
            WriteOutcome.APPLIED,
            WriteOutcome.APPLIED,
            WriteOutcome.STALE,
            WriteOutcome.STALE,
            WriteOutcome.APPLIED,
            WriteOutcome.STALE,
        ]
        document = await client[mongo_db.name][BACKTESTS_COLLECTION].find_one({"_id": accepted.task_id})
        assert document is not None
        assert (document["state"], document["seq"]) == ("SUCCESS", 5)
        assert document["created_at"] == accepted.occurred_at
        index_names = {
            index["name"] async for index in await client[mongo_db.name][BACKTESTS_COLLECTION].list_indexes()
        }
        assert {"cache_key", "user_created"} <= index_names
    finally:
        await client.close()
