"""Quotas on real NATS KV shared by two gateways' connections: under concurrent requests from both, a
user's bucket grants exactly its burst, and the stream cap counts the streams of both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from backtest_core.contracts import new_id
from backtest_gateway.adapters.nats_kv_quotas import QUOTAS_BUCKET, NatsKvQuotaStore
from backtest_gateway.errors import RateLimited, TooManyStreams
from backtest_gateway.ratelimit import Bucket, Rate, RateLimiter
from backtest_gateway.stream_slots import StreamSlots
from faststream.nats import NatsBroker

pytestmark = pytest.mark.integration

BURST = 20
RATES = {Bucket.SUBMIT: Rate(per_s=1 / 3600, burst=BURST), Bucket.READ: Rate(per_s=1 / 3600, burst=BURST)}


@pytest.fixture
async def two_gateways(nats_url: str) -> AsyncIterator[tuple[NatsKvQuotaStore, NatsKvQuotaStore]]:
    """Two quota stores on two connections, as two gateway processes hold them."""
    brokers = [NatsBroker(nats_url), NatsBroker(nats_url)]
    stores = []
    for broker in brokers:
        await broker.connect()
        store = NatsKvQuotaStore(broker, scope="gateway-test")
        await store.open(ttl_s=300)
        stores.append(store)
    try:
        yield stores[0], stores[1]
    finally:
        for broker in brokers:
            await broker.stop()


async def _granted(limiter: RateLimiter, user: str) -> bool:
    try:
        await limiter.take(user, Bucket.SUBMIT)
    except RateLimited:
        return False
    return True


async def test_concurrent_requests_through_two_gateways_are_granted_exactly_the_burst(two_gateways):
    first = RateLimiter(RATES, two_gateways[0])
    second = RateLimiter(RATES, two_gateways[1])
    user = f"alice-{new_id()[:8]}"

    outcomes = await asyncio.gather(*(_granted(limiter, user) for limiter in [first, second] * 30))

    assert sum(outcomes) == BURST  # 60 at once, 30 through each gateway: the compare-and-set lost none
    assert not await _granted(first, user) and not await _granted(second, user)
    assert await _granted(second, f"bob-{new_id()[:8]}")  # another user's bucket is full


async def test_user_names_with_characters_kv_keys_refuse_still_get_their_own_bucket(two_gateways):
    limiter = RateLimiter({**RATES, Bucket.SUBMIT: Rate(1 / 3600, 1)}, two_gateways[0])
    odd = f"ann marie/{new_id()[:6]}@example.com*"

    assert await _granted(limiter, odd)
    assert not await _granted(limiter, odd)
    assert await _granted(limiter, odd.upper())


async def test_the_stream_cap_holds_over_both_gateways_and_a_closed_stream_frees_its_slot(two_gateways):
    first, second = StreamSlots(2, two_gateways[0]), StreamSlots(2, two_gateways[1])
    user = f"carol-{new_id()[:8]}"

    async with first.hold(user), second.hold(user):
        with pytest.raises(TooManyStreams):
            async with first.hold(user):
                pass
        assert await second.open_streams(user) == 2
    async with second.hold(user):
        assert await first.open_streams(user) == 1


async def test_two_platform_instances_on_one_nats_keep_apart_quotas(two_gateways, nats_url):
    broker = NatsBroker(nats_url)
    await broker.connect()
    try:
        other = NatsKvQuotaStore(broker, scope="another-instance")
        await other.open(ttl_s=300)
        rates = {**RATES, Bucket.SUBMIT: Rate(1 / 3600, 1)}
        user = f"dan-{new_id()[:8]}"
        assert await _granted(RateLimiter(rates, two_gateways[0]), user)
        assert await _granted(RateLimiter(rates, other), user)  # the same name in another instance
        assert not await _granted(RateLimiter(rates, two_gateways[1]), user)
    finally:
        await broker.stop()


async def test_a_gateway_joining_with_other_settings_keeps_the_buckets_ttl(two_gateways, nats_url):
    broker = NatsBroker(nats_url)
    await broker.connect()
    try:
        bucket = await broker.config.connection_state.stream.key_value(QUOTAS_BUCKET)
        ttl_before = (await bucket.status()).ttl
        late = NatsKvQuotaStore(broker, scope="gateway-test")
        await late.open(ttl_s=(ttl_before or 300) + 123)  # no error, no change of the shared bucket
        assert (await bucket.status()).ttl == ttl_before
    finally:
        await broker.stop()
