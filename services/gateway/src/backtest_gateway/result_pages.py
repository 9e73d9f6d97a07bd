"""Pages of a result (a window of its trades and equity points), serialised to JSON in a worker thread.

A stored result can hold ~200,000 trades (MAX_RESULT_BYTES packed, ~60 MB as JSON objects). Answers carry
one page of each list with the totals and the next offsets, so the cost of a request is bounded by the
page size. Serialisation runs in a worker thread, in chunks of `CHUNK_ITEMS` items, so the event loop
gets the GIL back between chunks and keeps serving other users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic_core
from anyio import CapacityLimiter, to_thread
from backtest_core.contracts import BacktestSucceeded
from backtest_core.contracts.records import read_result
from backtest_core.model.results import BacktestResult, EquityPoint, backtest_result
from backtest_core.model.trade_log import TradeLog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TRADES_PAGE_DEFAULT = 1_000
TRADES_PAGE_MAX = 5_000
EQUITY_PAGE_DEFAULT = 5_000
EQUITY_PAGE_MAX = 10_000
CHUNK_ITEMS = 100  # items serialised per GIL hold (~1 ms for trades): the loop waits at most that
# One worker thread at a time decodes or serialises a result: the event loop competes for the GIL
# with at most one busy thread, however many large answers are in flight.
HEAVY_WORK = CapacityLimiter(1)

_TRADES = TypeAdapter(TradeLog)
_EQUITY = TypeAdapter(list[EquityPoint])


@dataclass(frozen=True, slots=True)
class PageWindow:
    """Which trades and equity points an answer carries: `[offset, offset + limit)` of each list."""

    trades_offset: int = 0
    trades_limit: int = TRADES_PAGE_DEFAULT
    equity_offset: int = 0
    equity_limit: int = EQUITY_PAGE_DEFAULT


class ResultPage(BaseModel):
    """Where this answer's trades and equity points sit in the whole result; None: nothing follows."""

    model_config = ConfigDict(frozen=True)

    trades_total: int = Field(ge=0)
    trades_offset: int = Field(ge=0)
    trades_next_offset: int | None
    equity_total: int = Field(ge=0)
    equity_offset: int = Field(ge=0)
    equity_next_offset: int | None


def _next(offset: int, limit: int, total: int) -> int | None:
    end = offset + limit
    return end if end < total else None


def page_info(result: BacktestResult, window: PageWindow) -> ResultPage:
    """Return the totals and next offsets of `window` over `result`."""
    trades, equity = len(result.trades), len(result.equity_curve)
    return ResultPage(
        trades_total=trades,
        trades_offset=window.trades_offset,
        trades_next_offset=_next(window.trades_offset, window.trades_limit, trades),
        equity_total=equity,
        equity_offset=window.equity_offset,
        equity_next_offset=_next(window.equity_offset, window.equity_limit, equity),
    )


def _json_list(items: Sequence[Any], adapter: TypeAdapter[Any]) -> bytes:
    parts = [
        adapter.dump_json(items[at : at + CHUNK_ITEMS])[1:-1] for at in range(0, len(items), CHUNK_ITEMS)
    ]
    return b"[" + b",".join(part for part in parts if part) + b"]"


def result_json(result: BacktestResult, window: PageWindow) -> bytes:
    """Return the result cut to `window` as JSON (blocking: the costly part of an answer)."""
    trades = result.trades[window.trades_offset : window.trades_offset + window.trades_limit]
    equity = result.equity_curve[window.equity_offset : window.equity_offset + window.equity_limit]
    head = result.model_dump(mode="json", exclude={"trades", "equity_curve"})
    return (
        pydantic_core.to_json(head)[:-1]
        + b',"equity_curve":'
        + _json_list(equity, _EQUITY)
        + b',"trades":'
        + _json_list(trades, _TRADES)
        + b"}"
    )


def page_json(envelope: Mapping[str, Any], result: BacktestResult, window: PageWindow, part: bytes) -> bytes:
    """Return `{**envelope, "page": ..., "result": part}`, `part` being `result_json(result, window)`."""
    body = pydantic_core.to_json({**envelope, "page": page_info(result, window).model_dump()})
    return body[:-1] + b',"result":' + part + b"}"


async def result_json_off_loop(result: BacktestResult, window: PageWindow) -> bytes:
    """Run `result_json` in a worker thread (one at a time: HEAVY_WORK)."""
    return await to_thread.run_sync(result_json, result, window, limiter=HEAVY_WORK)


async def decode_result(raw: Mapping[str, Any]) -> BacktestResult:
    """Validate a stored result document (trades packed or as objects) in a worker thread."""
    return await to_thread.run_sync(read_result, raw, limiter=HEAVY_WORK)


async def decode_event_result(raw: bytes) -> BacktestResult:
    """Validate a whole SUCCESS event's JSON and return its result, in a worker thread."""
    event = await to_thread.run_sync(BacktestSucceeded.model_validate_json, raw, limiter=HEAVY_WORK)
    return backtest_result(event.result)
