"""Sweep locks on real NATS KV, taken through two sweepers' connections: never two holders at once, a
lock held elsewhere is busy until released, and each key is locked on its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from backtest_core.contracts import new_id
from backtest_sweeper.adapters.nats_kv_locks import NatsKvLocks
from backtest_sweeper.locks import LockBusy
from faststream.nats import NatsBroker

pytestmark = pytest.mark.integration


@pytest.fixture
async def brokers(nats_url: str) -> AsyncIterator[list[NatsBroker]]:
    """Two connections, as two sweeper processes hold them."""
    connected = [NatsBroker(nats_url), NatsBroker(nats_url)]
    for broker in connected:
        await broker.connect()
    try:
        yield connected
    finally:
        for broker in connected:
            await broker.stop()


async def _locks(brokers: list[NatsBroker], wait_s: float, ttl_s: float = 10.0) -> list[NatsKvLocks]:
    bucket = f"locks_{new_id()[:12]}"  # the bucket's TTL is the test's
    locks = [NatsKvLocks(broker, wait_s=wait_s, bucket=bucket, ttl_s=ttl_s) for broker in brokers]
    for lock in locks:
        await lock.open()
    return locks


async def test_holders_of_one_key_never_overlap_across_two_sweepers(brokers):
    key = f"sweep.{new_id()}"
    holding, most, order = 0, 0, []

    async def change(locks: NatsKvLocks, name: int) -> None:
        nonlocal holding, most
        async with locks.hold(key):
            holding += 1
            most = max(most, holding)
            await asyncio.sleep(0.01)  # reads and writes of the sweep happen here
            order.append(name)
            holding -= 1

    first, second = await _locks(brokers, wait_s=30.0)
    await asyncio.gather(*(change(first if i % 2 else second, i) for i in range(20)))

    assert most == 1 and sorted(order) == list(range(20))


async def test_a_lock_held_elsewhere_is_busy_until_released_and_other_keys_are_free(brokers):
    first, second = await _locks(brokers, wait_s=1.0)
    key = f"sweep.{new_id()}"
    async with first.hold(key):
        with pytest.raises(LockBusy, match="held by another sweeper"):
            async with second.hold(key):
                pass
        async with second.hold(f"walkforward.{new_id()}"):
            pass
    async with second.hold(key):  # released: free at once
        pass


async def test_a_lock_whose_holder_was_killed_is_free_once_the_ttl_passed(brokers):
    impatient, _ = await _locks(brokers, wait_s=0.2, ttl_s=1.5)
    bucket = await brokers[0].config.connection_state.stream.key_value(impatient.bucket)
    key = f"sweep.{new_id()}"
    await bucket.create(key, b"held")  # what a holder killed -9 leaves: the key, never renewed or deleted

    with pytest.raises(LockBusy):
        async with impatient.hold(key):
            pass
    patient_wait = NatsKvLocks(brokers[1], wait_s=10.0, bucket=impatient.bucket, ttl_s=1.5)
    await patient_wait.open()
    async with patient_wait.hold(key):  # the bucket's TTL dropped the dead holder's key
        pass


async def test_a_held_lock_is_renewed_so_it_outlives_the_ttl(brokers):
    first, second = await _locks(brokers, wait_s=0.5, ttl_s=1.5)
    key = f"sweep.{new_id()}"
    async with first.hold(key):
        await asyncio.sleep(3.0)  # twice the TTL: renewed every 0.5 s
        with pytest.raises(LockBusy):
            async with second.hold(key):
                pass
