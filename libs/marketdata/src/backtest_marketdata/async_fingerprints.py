"""backtest_core.contracts.cache_key.DataFingerprints on MongoCandleStore (synchronous pymongo, run in a
thread): the scheduler keys tasks and the sweeper keys trials by it."""

from __future__ import annotations

import asyncio
from typing import Protocol


class FingerprintSource(Protocol):
    """The part of backtest_marketdata.MongoCandleStore the scheduler uses."""

    def fingerprint(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> str:
        """Return a string that changes iff the stored candles in range change."""
        ...


class CandleStoreFingerprints:
    """Asks the candle store for fingerprints without blocking the event loop."""

    def __init__(self, store: FingerprintSource) -> None:
        self._store = store

    async def fingerprint(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> str:
        return await asyncio.to_thread(self._store.fingerprint, symbol, interval, start_ns, end_ns)
