"""Value objects returned by the market-data stores (frozen, unknown fields rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WriteReport(Frozen):
    """What one `MongoCandleStore.write` changed: bars added, bars replaced by different values, bars
    that were already stored identically, and bucket documents written."""

    symbol: str
    interval: str
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    buckets_written: int = 0

    def __add__(self, other: WriteReport) -> WriteReport:
        return WriteReport(
            symbol=self.symbol,
            interval=self.interval,
            added=self.added + other.added,
            replaced=self.replaced + other.replaced,
            unchanged=self.unchanged + other.unchanged,
            buckets_written=self.buckets_written + other.buckets_written,
        )


class Gap(Frozen):
    """Missing bars: `start_ns` is the first missing open time, `end_ns` the next stored one (UTC ns)."""

    start_ns: int
    end_ns: int
    missing: int = Field(ge=1, description="number of bars missing in [start_ns, end_ns)")


class Coverage(Frozen):
    """Stored bars of one symbol and interval: first and last open time (UTC ns), count, and gaps."""

    symbol: str
    interval: str
    first_ns: int | None
    last_ns: int | None
    count: int
    expected: int = Field(description="bars between first and last inclusive if nothing were missing")
    gaps: int
    missing: int


SymbolType = Literal["spot", "futures"]


class IntervalCoverage(Frozen):
    """Coverage of one interval as stored on a symbol document."""

    first: datetime | None
    last: datetime | None
    count: int
    gaps: int
    missing: int


class Symbol(Frozen):
    """A tradable symbol (seed 000's SYMBOLS) plus the stored data coverage per interval."""

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    name: str
    type: SymbolType = "spot"
    market_cap: float | None = Field(default=None, ge=0, description="USD")
    volume_24h: float | None = Field(default=None, ge=0, description="quote currency over 24 hours")
    is_active: bool = True
    last_updated: datetime
    coverage: dict[str, IntervalCoverage] = Field(default_factory=dict)


class SymbolPage(Frozen):
    """One page of symbols and the total number matching."""

    total: int
    offset: int
    limit: int
    items: list[Symbol]


SortField = Literal["symbol", "name", "type", "market_cap", "volume_24h", "is_active", "last_updated"]


class SymbolFilter(Frozen):
    """Criteria for `MongoSymbolStore.filter`; every given criterion must hold."""

    type: SymbolType | None = None
    is_active: bool | None = None
    min_volume_24h: float | None = None
    max_volume_24h: float | None = None
    min_market_cap: float | None = None
    max_market_cap: float | None = None
    has_interval: str | None = Field(
        default=None, description="only symbols with stored bars of this interval"
    )
    covers_from: datetime | None = Field(
        default=None, description="coverage of has_interval starts at or before"
    )
    covers_to: datetime | None = Field(default=None, description="coverage of has_interval ends at or after")
    max_gaps: int | None = Field(default=None, ge=0, description="at most this many gaps in has_interval")
