"""Per-user token buckets: one for submissions, one for reads; an empty bucket answers 429 + Retry-After."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from backtest_gateway.errors import RateLimited
from backtest_gateway.settings import GatewaySettings

Clock = Callable[[], float]


class Bucket(StrEnum):
    """What a request spends a token of."""

    SUBMIT = "submit"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Rate:
    """Refill `per_s` tokens per second up to `burst` tokens."""

    per_s: float
    burst: int


@dataclass(slots=True)
class _State:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets keyed by (user, bucket); `clock` is monotonic seconds (injected for tests).

    Memory: one small entry per active (user, bucket); entries idle long enough to be full are dropped
    when the table grows past `max_entries`.
    """

    def __init__(self, rates: dict[Bucket, Rate], clock: Clock = time.monotonic, max_entries: int = 100_000):
        self._rates = rates
        self._clock = clock
        self._max_entries = max_entries
        self._states: dict[tuple[str, Bucket], _State] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: GatewaySettings, clock: Clock = time.monotonic) -> RateLimiter:
        """Build the limiter with the submit and read rates of `settings`."""
        return cls(
            {
                Bucket.SUBMIT: Rate(settings.submit_rate_per_min / 60.0, settings.submit_burst),
                Bucket.READ: Rate(settings.read_rate_per_s, settings.read_burst),
            },
            clock,
        )

    def take(self, user_id: str, bucket: Bucket) -> None:
        """Spend one token of the user's bucket or raise RateLimited with the whole seconds to wait."""
        rate = self._rates[bucket]
        now = self._clock()
        with self._lock:
            state = self._states.get((user_id, bucket))
            if state is None:
                if len(self._states) >= self._max_entries:
                    self._evict_full(now)
                state = self._states[(user_id, bucket)] = _State(float(rate.burst), now)
            state.tokens = min(float(rate.burst), state.tokens + (now - state.at) * rate.per_s)
            state.at = now
            if state.tokens >= 1.0:
                state.tokens -= 1.0
                return
            wait_s = max(1, math.ceil((1.0 - state.tokens) / rate.per_s))
        raise RateLimited(
            f"too many {bucket.value} requests: at most {rate.burst} at once and "
            f"{rate.per_s:g} per second; retry in {wait_s} s",
            retry_after_s=wait_s,
        )

    def _evict_full(self, now: float) -> None:
        for key, state in list(self._states.items()):
            rate = self._rates[key[1]]
            if state.tokens + (now - state.at) * rate.per_s >= rate.burst:
                del self._states[key]
