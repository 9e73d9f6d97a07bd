"""MongoMarketData: symbols and candles via `backtest_marketdata` stores on a secondary-preferred client."""

from __future__ import annotations

from typing import Any

from backtest_core.model.candles import Candles
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.models import SortField, Symbol, SymbolFilter, SymbolPage
from backtest_marketdata.mongo import reader_client
from backtest_marketdata.symbol_store import MongoSymbolStore
from pymongo import MongoClient


class MongoMarketData:
    """Read-only market data; reads go to a secondary when one is available."""

    def __init__(self, client: MongoClient[dict[str, Any]], db_name: str) -> None:
        self._client = client
        db = client[db_name]
        self._symbols = MongoSymbolStore(db)
        self._candles = MongoCandleStore(db)

    @classmethod
    def connect(cls, uri: str, db_name: str) -> MongoMarketData:
        """Create a secondary-preferred client for `uri` (no I/O yet)."""
        return cls(reader_client(uri), db_name)

    def close(self) -> None:
        """Close the client."""
        self._client.close()

    def symbols(
        self, criteria: SymbolFilter, offset: int, limit: int, sort: SortField, descending: bool
    ) -> SymbolPage:
        """Return one page of matching symbols."""
        return self._symbols.filter(criteria, offset=offset, limit=limit, sort=sort, descending=descending)

    def symbol(self, symbol: str) -> Symbol | None:
        """Return one symbol, or None."""
        return self._symbols.get(symbol)

    def candles(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the stored bars in [start_ns, end_ns)."""
        return self._candles.load(symbol, interval, start_ns, end_ns)
