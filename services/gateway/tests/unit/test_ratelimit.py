"""Per-user token buckets: burst, refill at the configured rate, Retry-After in whole seconds, and one
bucket for every limiter that shares a quota store (every gateway)."""

from __future__ import annotations

import pytest
from backtest_gateway.errors import QuotasUnavailable, RateLimited
from backtest_gateway.ports import QuotaChange
from backtest_gateway.ratelimit import Bucket, Rate, RateLimiter, spend
from gateway_fakes import InMemoryQuotaStore

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class UnreachableQuotas:
    async def change(self, key: str, change: QuotaChange) -> None:
        raise QuotasUnavailable("NATS disconnected")


async def test_burst_then_refusal_with_retry_after_from_rate():
    clock = Clock()
    rates = {Bucket.SUBMIT: Rate(per_s=0.5, burst=3), Bucket.READ: Rate(10, 10)}
    limiter = RateLimiter(rates, InMemoryQuotaStore(), clock)

    for _ in range(3):
        await limiter.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited) as caught:
        await limiter.take("alice", Bucket.SUBMIT)

    assert caught.value.retry_after_s == 2  # one token at 0.5/s takes 2 s
    assert "at most 3 at once" in caught.value.message


async def test_tokens_refill_with_time_up_to_burst():
    clock = Clock()
    rates = {Bucket.SUBMIT: Rate(per_s=1.0, burst=2), Bucket.READ: Rate(1, 1)}
    limiter = RateLimiter(rates, InMemoryQuotaStore(), clock)
    await limiter.take("alice", Bucket.SUBMIT)
    await limiter.take("alice", Bucket.SUBMIT)

    clock.now = 100.0  # long idle: refills to burst (2), not 100
    await limiter.take("alice", Bucket.SUBMIT)
    await limiter.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited):
        await limiter.take("alice", Bucket.SUBMIT)
    clock.now = 101.0
    await limiter.take("alice", Bucket.SUBMIT)


async def test_users_and_buckets_are_independent():
    clock = Clock()
    rates = {Bucket.SUBMIT: Rate(per_s=0.1, burst=1), Bucket.READ: Rate(0.1, 1)}
    limiter = RateLimiter(rates, InMemoryQuotaStore(), clock)
    await limiter.take("alice", Bucket.SUBMIT)

    await limiter.take("bob", Bucket.SUBMIT)
    await limiter.take("alice", Bucket.READ)
    with pytest.raises(RateLimited) as caught:
        await limiter.take("alice", Bucket.SUBMIT)
    assert caught.value.retry_after_s == 10


async def test_two_limiters_on_one_store_share_each_users_bucket_as_two_gateways_do():
    clock, quotas = Clock(), InMemoryQuotaStore()
    rates = {Bucket.SUBMIT: Rate(per_s=0.5, burst=3), Bucket.READ: Rate(10, 10)}
    first, second = RateLimiter(rates, quotas, clock), RateLimiter(rates, quotas, clock)

    await first.take("alice", Bucket.SUBMIT)
    await second.take("alice", Bucket.SUBMIT)
    await first.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited):
        await second.take("alice", Bucket.SUBMIT)  # 3 of 3 spent across both
    clock.now = 2.0  # 2 s at 0.5/s: one token back, usable from either
    await second.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited):
        await first.take("alice", Bucket.SUBMIT)


async def test_a_refused_request_leaves_the_stored_bucket_unchanged():
    clock, quotas = Clock(), InMemoryQuotaStore()
    limiter = RateLimiter({Bucket.SUBMIT: Rate(per_s=1.0, burst=1), Bucket.READ: Rate(1, 1)}, quotas, clock)
    await limiter.take("alice", Bucket.SUBMIT)
    stored = dict(quotas.entries)
    clock.now = 0.5
    with pytest.raises(RateLimited):
        await limiter.take("alice", Bucket.SUBMIT)
    assert quotas.entries == stored


async def test_an_unreachable_quota_store_lets_requests_through():
    limiter = RateLimiter(
        {Bucket.SUBMIT: Rate(per_s=0.1, burst=1), Bucket.READ: Rate(1, 1)}, UnreachableQuotas()
    )
    for _ in range(5):
        await limiter.take("alice", Bucket.SUBMIT)  # no exception: limits must not take the API down


def test_spend_refills_at_the_rate_caps_at_burst_and_says_the_wait():
    rate = Rate(per_s=0.25, burst=4)
    assert spend(None, 0.0, rate, 10.0).tokens == 3.0  # a new bucket is full
    half = spend(0.5, 0.0, rate, 1.0)  # 0.5 + 0.25 = 0.75: refused
    assert (half.tokens, half.wait_s) == (0.75, 1)  # 0.25 short at 0.25/s: 1 s
    empty = spend(0.0, 0.0, rate, 0.0)
    assert empty.wait_s == 4
    assert spend(1.0, 0.0, rate, 1_000.0).tokens == 3.0  # capped at burst, then one spent
    assert spend(2.0, 10.0, rate, 5.0).tokens == 1.0  # clock went back: no refill
