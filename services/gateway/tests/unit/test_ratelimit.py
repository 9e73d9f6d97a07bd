"""Per-user token buckets: burst, refill at the configured rate, Retry-After in whole seconds."""

from __future__ import annotations

import pytest
from backtest_gateway.errors import RateLimited
from backtest_gateway.ratelimit import Bucket, Rate, RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_retry_after_from_rate():
    clock = Clock()
    limiter = RateLimiter({Bucket.SUBMIT: Rate(per_s=0.5, burst=3), Bucket.READ: Rate(10, 10)}, clock)

    for _ in range(3):
        limiter.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited) as caught:
        limiter.take("alice", Bucket.SUBMIT)

    assert caught.value.retry_after_s == 2  # one token at 0.5/s takes 2 s
    assert "at most 3 at once" in caught.value.message


def test_tokens_refill_with_time_up_to_burst():
    clock = Clock()
    limiter = RateLimiter({Bucket.SUBMIT: Rate(per_s=1.0, burst=2), Bucket.READ: Rate(1, 1)}, clock)
    limiter.take("alice", Bucket.SUBMIT)
    limiter.take("alice", Bucket.SUBMIT)

    clock.now = 100.0  # long idle: refills to burst (2), not 100
    limiter.take("alice", Bucket.SUBMIT)
    limiter.take("alice", Bucket.SUBMIT)
    with pytest.raises(RateLimited):
        limiter.take("alice", Bucket.SUBMIT)
    clock.now = 101.0
    limiter.take("alice", Bucket.SUBMIT)


def test_users_and_buckets_are_independent():
    clock = Clock()
    limiter = RateLimiter({Bucket.SUBMIT: Rate(per_s=0.1, burst=1), Bucket.READ: Rate(0.1, 1)}, clock)
    limiter.take("alice", Bucket.SUBMIT)

    limiter.take("bob", Bucket.SUBMIT)
    limiter.take("alice", Bucket.READ)
    with pytest.raises(RateLimited) as caught:
        limiter.take("alice", Bucket.SUBMIT)
    assert caught.value.retry_after_s == 10
