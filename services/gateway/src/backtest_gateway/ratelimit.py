"""Per-user token buckets: one for submissions, one for reads; an empty bucket answers 429 + Retry-After.

The buckets live in a QuotaStore shared by every gateway (NATS KV in production), so a user's limit holds
however many gateways serve them. Times are wall-clock seconds: gateways on different hosts compare them.
If the shared store cannot be reached the request goes through (logged): limits protect the platform,
they must not take reads down with NATS.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from backtest_gateway.errors import QuotasUnavailable, RateLimited
from backtest_gateway.ports import QuotaStore
from backtest_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

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

    @property
    def refill_s(self) -> float:
        """Seconds an empty bucket takes to be full again."""
        return self.burst / self.per_s


@dataclass(frozen=True, slots=True)
class Spent:
    """A bucket after one request: its tokens at `at`, and the whole seconds to wait if it was refused."""

    tokens: float
    at: float
    wait_s: int | None


def spend(tokens: float | None, at: float, rate: Rate, now: float) -> Spent:
    """Refill a bucket holding `tokens` at time `at` (None: never used, so full) up to `now`, then take one
    token, or none and the wait until one is there. A clock that went back refills nothing."""
    held = float(rate.burst) if tokens is None else min(rate.burst, tokens + max(0.0, now - at) * rate.per_s)
    if held >= 1.0:
        return Spent(held - 1.0, now, None)
    return Spent(held, now, max(1, math.ceil((1.0 - held) / rate.per_s)))


class RateLimiter:
    """Token buckets keyed by (user, bucket) in `quotas`; `clock` is wall-clock seconds (tests inject one)."""

    def __init__(
        self, rates: dict[Bucket, Rate], quotas: QuotaStore, clock: Clock = time.time, name: str = "rate"
    ):
        self._rates = rates
        self._quotas = quotas
        self._clock = clock
        self._name = name

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, quotas: QuotaStore, clock: Clock = time.time
    ) -> RateLimiter:
        """Build the limiter with the submit and read rates of `settings`."""
        return cls(
            {
                Bucket.SUBMIT: Rate(settings.submit_rate_per_min / 60.0, settings.submit_burst),
                Bucket.READ: Rate(settings.read_rate_per_s, settings.read_burst),
            },
            quotas,
            clock,
        )

    @property
    def longest_refill_s(self) -> float:
        """How long an idle bucket may take to be full again: an entry unwritten longer is as good as none."""
        return max(rate.refill_s for rate in self._rates.values())

    async def take(self, user_id: str, bucket: Bucket) -> None:
        """Spend one token of the user's bucket or raise RateLimited with the whole seconds to wait."""
        rate = self._rates[bucket]
        now = self._clock()

        def change(value: bytes | None) -> tuple[bytes | None, Spent]:
            state = json.loads(value) if value else None
            spent = spend(state["tokens"] if state else None, state["at"] if state else now, rate, now)
            if spent.wait_s is not None:
                return value, spent  # refused: the stored state still says the same, nothing to write
            return json.dumps({"tokens": spent.tokens, "at": spent.at}).encode(), spent

        try:
            spent: Spent = await self._quotas.change(f"{self._name}.{bucket.value}:{user_id}", change)
        except QuotasUnavailable as error:
            log.warning("rate limit not checked (%s): %s request of a user let through", error, bucket.value)
            return
        if spent.wait_s is not None:
            raise RateLimited(
                f"too many {bucket.value} requests: at most {rate.burst} at once and "
                f"{rate.per_s:g} per second; retry in {spent.wait_s} s",
                retry_after_s=spent.wait_s,
            )
