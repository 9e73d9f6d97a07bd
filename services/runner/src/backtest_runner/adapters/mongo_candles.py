"""MongoCandleSource: candles from MongoDB through backtest_marketdata, read-only, secondary preferred."""

from __future__ import annotations

from typing import Any

from backtest_core.model.candles import Candles
from backtest_marketdata import BucketCache, MongoCandleStore, database_name, reader_client
from pymongo import MongoClient


class MongoCandleSource:
    """Adapter of the CandleSource port over `backtest_marketdata.MongoCandleStore`.

    The client reads from a secondary when there is one and never writes; give it a read-only user in
    the URI where the server supports users. Sandboxes never see this client or its credentials.
    """

    def __init__(self, store: MongoCandleStore) -> None:
        self._store = store

    @classmethod
    def connect(
        cls, uri: str, database: str | None = None, cache_bytes: int = 0
    ) -> tuple[MongoCandleSource, MongoClient[Any]]:
        """Build the source over `database` (default: the URI's) and return it with its client to close;
        with `cache_bytes` > 0 it keeps loaded buckets in memory by their hash (BucketCache)."""
        client = reader_client(uri, appname="backtest-runner")
        db = client.get_database(database or database_name(uri))
        cache = BucketCache(cache_bytes) if cache_bytes > 0 else None
        return cls(MongoCandleStore(db, cache=cache)), client

    def load(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the stored bars with start_ns <= open_time < end_ns."""
        return self._store.load(symbol, interval, start_ns, end_ns)
