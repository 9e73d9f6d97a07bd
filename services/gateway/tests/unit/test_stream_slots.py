"""Stream slots as leases in a shared quota store: the cap holds over every gateway, a closed stream frees
its slot, a gateway that vanished frees its slots when their leases end, and open streams keep theirs."""

from __future__ import annotations

import asyncio

import pytest
from backtest_gateway.errors import TooManyStreams
from backtest_gateway.stream_slots import StreamSlots
from gateway_fakes import InMemoryQuotaStore

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_cap_counts_the_streams_of_every_gateway_sharing_the_store():
    quotas, clock = InMemoryQuotaStore(), Clock()
    first, second = StreamSlots(2, quotas, clock=clock), StreamSlots(2, quotas, clock=clock)

    async with first.hold("alice"), second.hold("alice"):
        assert await first.open_streams("alice") == 2
        with pytest.raises(TooManyStreams, match="at most 2 open streams per user, 'alice' has 2"):
            async with second.hold("alice"):
                pass
        async with first.hold("bob"):  # another user's slots are their own
            assert await second.open_streams("bob") == 1
    assert await second.open_streams("alice") == 0
    assert quotas.entries == {}  # nothing left behind once every stream closed


async def test_leases_of_a_gateway_that_vanished_end_and_free_their_slots():
    quotas, clock = InMemoryQuotaStore(), Clock()
    killed = StreamSlots(1, quotas, lease_s=30.0, clock=clock)
    survivor = StreamSlots(1, quotas, lease_s=30.0, clock=clock)
    held = killed.hold("alice")
    await held.__aenter__()  # never exited: its gateway was killed -9 and its renewals stopped with it

    with pytest.raises(TooManyStreams):
        async with survivor.hold("alice"):
            pass
    clock.now += 30.0  # the lease ran out unrenewed
    async with survivor.hold("alice"):
        assert await survivor.open_streams("alice") == 1


async def test_an_open_stream_renews_its_lease_so_it_outlives_the_lease_time():
    quotas, clock = InMemoryQuotaStore(), Clock()
    slots = StreamSlots(1, quotas, lease_s=0.3, clock=clock)  # renewed every 0.1 s of real time
    async with slots.hold("alice"):
        clock.now += 0.2
        await asyncio.sleep(0.5)  # renewals at the clock's 1000.2: the lease now ends at 1000.5
        clock.now += 0.2  # 1000.4: past the first lease (1000.3), within the renewed one
        assert await slots.open_streams("alice") == 1
        with pytest.raises(TooManyStreams):
            async with slots.hold("alice"):
                pass
