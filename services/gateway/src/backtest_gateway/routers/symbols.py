"""The symbol resource (read-only, every authenticated role): list, one, filter, and candle ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from anyio import to_thread
from backtest_core.errors import DataError
from backtest_core.model.candles import INTERVAL_NS, SYMBOL_PATTERN
from backtest_marketdata.models import SortField, Symbol
from fastapi import APIRouter, Body, Path, Query

from backtest_gateway.deps import MarketDep, ReaderDep, SettingsDep
from backtest_gateway.errors import ApiError, ErrorBody, NotFound
from backtest_gateway.schemas_market import CandleBar, CandlePage, SymbolList, SymbolQuery

router = APIRouter(
    prefix="/symbol",
    tags=["symbols"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)

SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN.pattern, description="e.g. BTCUSDT")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no such symbol"}}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILTER_EXAMPLE = {
    "type": "spot",
    "is_active": True,
    "min_volume_24h": 1_000_000,
    "has_interval": "1d",
    "sort": "volume_24h",
    "descending": True,
    "limit": 20,
}


class SymbolNotFound(NotFound):
    """No such symbol."""

    code = "symbol_not_found"

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no symbol {symbol!r}", field="symbol")


class InvalidQuery(ApiError):
    """A combination of valid fields that the store refuses."""

    status_code = 422
    code = "validation_error"


def _ns(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _datetime(time_ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=time_ns // 1000)


LATEST = datetime(2262, 1, 1, tzinfo=UTC)  # int64 nanoseconds end in April 2262


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is not None and not EPOCH <= value < LATEST:
        raise InvalidQuery(
            f"{field} must be between {EPOCH.isoformat()} and {LATEST.isoformat()}, was {value}", field=field
        )
    if value is not None and value.tzinfo is None:
        raise InvalidQuery(
            f"{field} must be timezone-aware (UTC), e.g. 2020-01-01T00:00:00Z, was {value}", field=field
        )
    return value


def _page(query: SymbolQuery, total: int, items: list[Symbol]) -> SymbolList:
    following = query.offset + len(items)
    return SymbolList(
        items=items,
        total=total,
        limit=query.limit,
        offset=query.offset,
        next_offset=following if following < total else None,
    )


async def _symbols(market: MarketDep, query: SymbolQuery) -> SymbolList:
    criteria = query.criteria()
    try:
        page = await to_thread.run_sync(
            market.symbols, criteria, query.offset, query.limit, query.sort, query.descending
        )
    except DataError as error:
        raise InvalidQuery(str(error), field="has_interval") from error
    return _page(query, page.total, list(page.items))


@router.get("/list")
async def list_symbols(
    principal: ReaderDep,
    market: MarketDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    sort: SortField = "symbol",
    descending: bool = False,
) -> SymbolList:
    """List every symbol, sorted by `sort` (ties by symbol), one page at a time."""
    return await _symbols(market, SymbolQuery(limit=limit, offset=offset, sort=sort, descending=descending))


@router.post("/filter")
async def filter_symbols(
    query: Annotated[
        SymbolQuery,
        Body(openapi_examples={"liquid_spot": {"summary": "liquid spot symbols", "value": FILTER_EXAMPLE}}),
    ],
    principal: ReaderDep,
    market: MarketDep,
) -> SymbolList:
    """Return the symbols matching every given criterion: type, activity, 24h volume, market cap, coverage."""
    _aware(query.covers_from, "covers_from")
    _aware(query.covers_to, "covers_to")
    if query.has_interval is not None and query.has_interval not in INTERVAL_NS:
        raise InvalidQuery(
            f"has_interval must be one of {sorted(INTERVAL_NS)}, was {query.has_interval!r}",
            field="has_interval",
        )
    return await _symbols(market, query)


@router.get("/{symbol}", responses=_NOT_FOUND)
async def get_symbol(symbol: SymbolPath, principal: ReaderDep, market: MarketDep) -> Symbol:
    """Return one symbol with its data coverage per interval."""
    found = await to_thread.run_sync(market.symbol, symbol)
    if found is None:
        raise SymbolNotFound(symbol)
    return found


@router.get("/{symbol}/candles", responses=_NOT_FOUND)
async def symbol_candles(
    symbol: SymbolPath,
    principal: ReaderDep,
    market: MarketDep,
    settings: SettingsDep,
    interval: Annotated[str, Query(description=f"one of {sorted(INTERVAL_NS)}")] = "1d",
    start: Annotated[datetime | None, Query(description="first open time, inclusive (UTC)")] = None,
    end: Annotated[datetime | None, Query(description="last open time, exclusive (UTC)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000, description="bars per page (capped)")] = None,
) -> CandlePage:
    """Return the stored bars in [start, end), oldest first, at most `limit` (and the server cap) per page."""
    if interval not in INTERVAL_NS:
        raise InvalidQuery(
            f"interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}", field="interval"
        )
    _aware(start, "start")
    _aware(end, "end")
    if start is not None and end is not None and start >= end:
        raise InvalidQuery(f"start must be < end, was start={start}, end={end}", field="start")
    cap = min(limit or settings.candles_max_bars, settings.candles_max_bars)
    if await to_thread.run_sync(market.symbol, symbol) is None:
        raise SymbolNotFound(symbol)
    start_ns = None if start is None else _ns(start)
    end_ns = None if end is None else _ns(end)
    candles = await to_thread.run_sync(market.candles, symbol, interval, start_ns, end_ns)
    n = min(len(candles), cap)
    items = [
        CandleBar(
            open_time=_datetime(int(candles.open_time[i])),
            open=float(candles.open[i]),
            high=float(candles.high[i]),
            low=float(candles.low[i]),
            close=float(candles.close[i]),
            volume=float(candles.volume[i]),
        )
        for i in range(n)
    ]
    next_start = _datetime(int(candles.open_time[cap])) if len(candles) > cap else None
    return CandlePage(symbol=symbol, interval=interval, items=items, limit=cap, next_start=next_start)
