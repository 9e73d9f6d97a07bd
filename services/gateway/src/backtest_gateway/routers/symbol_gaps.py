"""`GET /symbol/{symbol}/gaps`: where a symbol's stored bars of one interval have holes (read-only, every
authenticated role), for the dashboard's Data page; the holes are found as coverage counts them
(`backtest_marketdata.candle_store.find_gaps`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from anyio import to_thread
from backtest_core.model.candles import INTERVAL_NS
from backtest_marketdata.candle_store import find_gaps
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from backtest_gateway.deps import MarketDep, ReaderDep
from backtest_gateway.errors import ErrorBody
from backtest_gateway.routers.symbols import _NOT_FOUND, InvalidQuery, SymbolNotFound, SymbolPath, _datetime

router = APIRouter(
    prefix="/symbol",
    tags=["symbols"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)


class GapOut(BaseModel):
    """Missing bars: `start` is the first missing open time, `end` the next stored one (UTC)."""

    start: datetime
    end: datetime
    missing: int = Field(ge=1, description="bars missing in [start, end)")


class GapList(BaseModel):
    """Every hole between the first and the last stored bar of one symbol and interval, oldest first."""

    symbol: str
    interval: str
    gaps: list[GapOut]
    missing: int = Field(ge=0, description="bars missing in all")


@router.get("/{symbol}/gaps", responses=_NOT_FOUND)
async def symbol_gaps(
    symbol: SymbolPath,
    principal: ReaderDep,
    market: MarketDep,
    interval: Annotated[str, Query(description=f"one of {sorted(INTERVAL_NS)}")] = "1d",
) -> GapList:
    """Return the runs of missing bars of the symbol's stored `interval` bars."""
    if interval not in INTERVAL_NS:
        expected = f"interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}"
        raise InvalidQuery(expected, field="interval")
    if await to_thread.run_sync(market.symbol, symbol) is None:
        raise SymbolNotFound(symbol)
    candles = await to_thread.run_sync(market.candles, symbol, interval, None, None)
    gaps = await to_thread.run_sync(find_gaps, candles.open_time, interval)
    items = [GapOut(start=_datetime(g.start_ns), end=_datetime(g.end_ns), missing=g.missing) for g in gaps]
    return GapList(symbol=symbol, interval=interval, gaps=items, missing=sum(g.missing for g in gaps))
