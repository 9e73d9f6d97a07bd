"""NatsKvAdmissionStore on a real NATS JetStream KV bucket: round trip and compare-and-set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from backtest_core.contracts import new_id
from backtest_scheduler.adapters.nats_kv_admission_store import NatsKvAdmissionStore
from backtest_scheduler.admission import AdmissionLimits, AdmissionState, offer
from backtest_scheduler.errors import TaskConflict
from faststream.nats import NatsBroker

pytestmark = pytest.mark.integration

LIMITS = AdmissionLimits(per_user_in_flight=1, max_in_flight=1)


@pytest.fixture
async def slots(nats_url: str) -> AsyncIterator[NatsKvAdmissionStore]:
    broker = NatsBroker(nats_url)
    await broker.connect()
    store = NatsKvAdmissionStore(broker, bucket=f"test_admission_{new_id()[:8]}")
    await store.open()
    yield store
    await broker.connection.jetstream().delete_key_value(store.kv._name)
    await broker.stop()


async def test_a_saved_state_reads_back_equal_and_nothing_saved_reads_empty(
    slots: NatsKvAdmissionStore,
) -> None:
    assert await slots.load() == (AdmissionState(), None)
    state = offer(offer(AdmissionState(), "a1", "alice", 1, LIMITS).state, "a2", "alice", 1, LIMITS).state

    await slots.save(state, None)

    loaded, revision = await slots.load()
    assert loaded == state and revision is not None and revision >= 1
    assert ([t.key for t in loaded.in_flight], [t.key for t in loaded.waiting]) == (["a1"], ["a2"])


async def test_saving_over_a_state_another_scheduler_changed_conflicts(slots: NatsKvAdmissionStore) -> None:
    first = offer(AdmissionState(), "a1", "alice", 1, LIMITS).state
    await slots.save(first, None)
    _, revision = await slots.load()
    await slots.save(offer(first, "b1", "bob", 1, LIMITS).state, revision)  # the other scheduler won

    with pytest.raises(TaskConflict, match=f"must be at revision {revision}"):
        await slots.save(offer(first, "c1", "carol", 1, LIMITS).state, revision)
    with pytest.raises(TaskConflict, match="must not exist yet"):
        await slots.save(first, None)
    loaded, _ = await slots.load()
    assert [t.key for t in loaded.waiting] == ["b1"]
