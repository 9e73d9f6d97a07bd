"""MongoCandleSource: candles from MongoDB through backtest_marketdata, read-only, secondary preferred."""

from __future__ import annotations

from typing import Protocol

from backtest_core.candles import Candles
from pymongo import MongoClient, ReadPreference


class _CandleStore(Protocol):
    def load(
        self, symbol: str, interval: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> Candles: ...


class MongoCandleSource:
    """Adapter of the CandleSource port over `backtest_marketdata.MongoCandleStore`.

    The client reads from a secondary when there is one and never writes; give it a read-only user in
    the URI where the server supports users. Sandboxes never see this client or its credentials.
    """

    def __init__(self, store: _CandleStore) -> None:
        self._store = store

    @classmethod
    def connect(cls, uri: str, database: str) -> tuple[MongoCandleSource, MongoClient[dict[str, object]]]:
        """Build the source and return it with its client (the caller closes the client)."""
        from backtest_marketdata import MongoCandleStore  # the library owns the candle schema

        client: MongoClient[dict[str, object]] = MongoClient(
            uri, read_preference=ReadPreference.SECONDARY_PREFERRED, appname="backtest-runner"
        )
        db = client.get_database(database, read_preference=ReadPreference.SECONDARY_PREFERRED)
        return cls(MongoCandleStore(db)), client

    def load(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the stored bars with start_ns <= open_time < end_ns."""
        return self._store.load(symbol, interval, start_ns, end_ns)
