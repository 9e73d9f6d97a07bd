"""InMemoryMarketData: the gateway's market-data port over held symbols and candles."""

from __future__ import annotations

import numpy as np
from backtest_core.model.candles import Candles
from backtest_marketdata.models import SortField, Symbol, SymbolFilter, SymbolPage


class InMemoryMarketData:
    """Symbols and candles held in dicts; filters like MongoSymbolStore's criteria."""

    def __init__(self, symbols: list[Symbol] | None = None, candles: list[Candles] | None = None) -> None:
        self.by_name: dict[str, Symbol] = {s.symbol: s for s in symbols or []}
        self.series: dict[tuple[str, str], Candles] = {(c.symbol, c.interval): c for c in candles or []}

    def symbols(
        self, criteria: SymbolFilter, offset: int, limit: int, sort: SortField, descending: bool
    ) -> SymbolPage:
        """Return one page of matching symbols sorted by `sort` (None last ascending), ties by name."""
        matches = [s for s in self.by_name.values() if _matches(s, criteria)]
        matches.sort(key=lambda s: s.symbol)
        present = [s for s in matches if getattr(s, sort) is not None]
        absent = [s for s in matches if getattr(s, sort) is None]
        present.sort(key=lambda s: getattr(s, sort), reverse=descending)
        ordered = present + absent
        return SymbolPage(
            total=len(ordered), offset=offset, limit=limit, items=ordered[offset : offset + limit]
        )

    def symbol(self, symbol: str) -> Symbol | None:
        """Return one symbol, or None."""
        return self.by_name.get(symbol)

    def candles(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the held bars in [start_ns, end_ns), empty if none."""
        held = self.series.get((symbol, interval))
        if held is None:
            empty_f, empty_t = np.zeros(0), np.zeros(0, np.int64)
            return Candles(symbol, interval, empty_t, empty_f, empty_f, empty_f, empty_f, empty_f)
        return held.between(start_ns, end_ns)


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _matches(s: Symbol, c: SymbolFilter) -> bool:
    if (c.type is not None and s.type != c.type) or (c.is_active is not None and s.is_active != c.is_active):
        return False
    if not _within(s.volume_24h, c.min_volume_24h, c.max_volume_24h):
        return False
    if not _within(s.market_cap, c.min_market_cap, c.max_market_cap):
        return False
    if c.has_interval is None:
        return True
    cover = s.coverage.get(c.has_interval)
    if cover is None or cover.count <= 0:
        return False
    if c.covers_from is not None and (cover.first is None or cover.first > c.covers_from):
        return False
    if c.covers_to is not None and (cover.last is None or cover.last < c.covers_to):
        return False
    return c.max_gaps is None or cover.gaps <= c.max_gaps
