"""NatsKvTaskStore on a real NATS JetStream KV bucket: round trip and compare-and-set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from backtest_core.contracts import TaskState, new_id
from backtest_scheduler.adapters.nats_kv_task_store import NatsKvTaskStore
from backtest_scheduler.errors import TaskConflict
from backtest_scheduler.task import TaskRecord
from faststream.nats import NatsBroker

from ..conftest import T0, make_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(nats_url: str) -> AsyncIterator[NatsKvTaskStore]:
    broker = NatsBroker(nats_url)
    await broker.connect()
    kv_store = NatsKvTaskStore(broker, bucket=f"test_tasks_{new_id()[:8]}")
    await kv_store.open()
    yield kv_store
    await broker.connection.jetstream().delete_key_value(kv_store.kv._name)
    await broker.stop()


def record(**changes: object) -> TaskRecord:
    base: dict[str, object] = {
        "task_id": new_id(),
        "user_id": "u1",
        "state": TaskState.PENDING,
        "seq": 1,
        "attempt": 1,
        "config": make_config(),
        "cache_key": "k" * 64,
        "created_at": T0,
        "updated_at": T0,
    }
    return TaskRecord.model_validate(base | changes)


async def test_created_record_reads_back_equal_with_a_revision(store: NatsKvTaskStore) -> None:
    original = record()
    await store.create(original)
    stored = await store.get(original.task_id)
    assert stored is not None
    assert stored.record == original
    assert stored.revision >= 1
    assert await store.get(new_id()) is None


async def test_create_twice_and_update_from_an_old_revision_conflict(store: NatsKvTaskStore) -> None:
    original = record()
    await store.create(original)
    with pytest.raises(TaskConflict, match="must not exist yet"):
        await store.create(original)
    stored = await store.get(original.task_id)
    assert stored is not None
    await store.update(original.model_copy(update={"state": TaskState.STARTED, "seq": 2}), stored.revision)

    with pytest.raises(TaskConflict, match=f"must still be at revision {stored.revision}"):
        await store.update(
            original.model_copy(update={"state": TaskState.CANCELLED, "seq": 2}), stored.revision
        )
    latest = await store.get(original.task_id)
    assert latest is not None and (latest.record.state, latest.record.seq) == (TaskState.STARTED, 2)


async def test_only_tasks_waiting_in_retry_are_listed_for_requeue(store: NatsKvTaskStore) -> None:
    assert await store.waiting_for_requeue() == []
    waiting = record(state=TaskState.RETRY, seq=3, attempt=2, requeue_at=T0 + timedelta(seconds=4))
    await store.create(waiting)
    await store.create(record(state=TaskState.RETRY, seq=4, attempt=2))  # job already requeued
    await store.create(record())

    assert await store.waiting_for_requeue() == [waiting]
