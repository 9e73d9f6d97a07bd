"""The public shapes of symbols and candles."""

from __future__ import annotations

from datetime import datetime

from backtest_marketdata.models import SortField, Symbol, SymbolFilter
from pydantic import BaseModel, ConfigDict, Field


class SymbolList(BaseModel):
    """One page of symbols; `next_offset` is None on the last page."""

    model_config = ConfigDict(frozen=True)

    items: list[Symbol]
    total: int = Field(ge=0)
    limit: int
    offset: int
    next_offset: int | None


class SymbolQuery(SymbolFilter):
    """Filter criteria (every given one must hold) plus the page and order of the answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sort: SortField = "symbol"
    descending: bool = False
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000_000)

    def criteria(self) -> SymbolFilter:
        """The filter part alone."""
        return SymbolFilter.model_validate(self.model_dump(include=set(SymbolFilter.model_fields)))


class CandleBar(BaseModel):
    """One bar: open time (UTC) and prices in quote currency, volume in base asset."""

    model_config = ConfigDict(frozen=True)

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class CandlePage(BaseModel):
    """Bars of one symbol and interval in [start, end), oldest first, at most `limit` of them.

    `next_start` is the open time to pass as `start` for the next page, None when this page is the last.
    """

    model_config = ConfigDict(frozen=True)

    symbol: str
    interval: str
    items: list[CandleBar]
    limit: int
    next_start: datetime | None
