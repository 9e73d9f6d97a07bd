"""Refuse at submit a backtest without stored candles (symbol, interval, range), saying what exists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from anyio import to_thread
from backtest_core.model.config import BacktestConfig
from backtest_core.model.time_range import describe_range, describe_time
from backtest_marketdata.models import IntervalCoverage, Symbol, SymbolFilter, SymbolPage

from backtest_gateway.errors import ApiError
from backtest_gateway.ports import MarketData

ALTERNATIVES_SHOWN = 20


class NoData(ApiError):
    """The catalog has no candles for a submitted symbol, interval or range."""

    status_code = 422
    code = "no_data"


def _span(cover: IntervalCoverage | None) -> tuple[datetime, datetime] | None:
    """The open times of the first and last stored bar, or None if no bar is stored."""
    if cover is None or cover.count <= 0 or cover.first is None or cover.last is None:
        return None
    return cover.first, cover.last


def _has_data(symbol: Symbol | None) -> bool:
    return symbol is not None and any(_span(c) for c in symbol.coverage.values())


def _holdings(symbol: Symbol) -> str:
    """What a symbol has, e.g. "1d from 2014-11-28 to 2020-01-17; 1h from ... to ..."."""
    spans = [(interval, _span(cover)) for interval, cover in sorted(symbol.coverage.items())]
    return "; ".join(
        f"{interval} from {describe_time(span[0])} to {describe_time(span[1])}"
        for interval, span in spans
        if span is not None
    )


def _alternatives(interval: str, page: SymbolPage) -> str:
    if page.total == 0:
        return f"no symbol has {interval} data"
    names = ", ".join(s.symbol for s in page.items)
    more = f" and {page.total - len(page.items)} more" if page.total > len(page.items) else ""
    return f"symbols with {interval}: {names}{more}"


def missing_data(
    config: BacktestConfig, catalog: Mapping[str, Symbol | None], with_interval: SymbolPage | None
) -> NoData | None:
    """Return the error for the first symbol without candles of the config's interval in its range.

    `with_interval` (the symbols that have the interval) is needed only when a symbol has no data.
    """
    interval, start, end = config.interval, config.start, config.end
    for name in config.symbols:
        symbol = catalog.get(name)
        if symbol is None or not _has_data(symbol):
            others = _alternatives(
                interval, with_interval or SymbolPage(total=0, offset=0, limit=0, items=[])
            )
            return NoData(f"{name} has no data; {others}", field="symbols")
        span = _span(symbol.coverage.get(interval))
        if span is None:
            return NoData(f"{interval} has no data for {name}; it has {_holdings(symbol)}", field="interval")
        first, last = span
        if (start is not None and start > last) or (end is not None and end <= first):
            return NoData(
                f"{name} has no {interval} data {describe_range(start, end)}; "
                f"it has {interval} from {describe_time(first)} to {describe_time(last)}",
                field="start",
            )
    return None


async def check_data(config: BacktestConfig, market: MarketData) -> None:
    """Raise NoData unless the catalog has candles of every symbol in the config's interval and range."""

    def read() -> NoData | None:
        catalog = {name: market.symbol(name) for name in config.symbols}
        with_interval = None
        if not all(_has_data(symbol) for symbol in catalog.values()):
            wanted = SymbolFilter(has_interval=config.interval)
            with_interval = market.symbols(wanted, 0, ALTERNATIVES_SHOWN, "symbol", False)
        return missing_data(config, catalog, with_interval)

    problem = await to_thread.run_sync(read)
    if problem is not None:
        raise problem
