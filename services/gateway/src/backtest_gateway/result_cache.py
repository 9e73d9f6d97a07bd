"""The last few decoded results and serialised pages: paging through a result reads and decodes it once,
and a page asked again (every stream's SUCCESS frame, a client re-reading) is serialised once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from backtest_core.model.results import BacktestResult

from backtest_gateway.ports import TaskStore
from backtest_gateway.result_pages import PageWindow, decode_result, page_json, result_json_off_loop

# (task id, seq): a SUCCESS result never changes once stored, so the stored seq names it.
ResultKey = tuple[str, int]
PAGE_CACHE_BYTES = 64 * 1024 * 1024  # serialised pages kept, in all


class ResultCache:
    """An LRU of at most `max_entries` decoded results; concurrent misses of one key load it once."""

    def __init__(self, max_entries: int = 4, page_bytes: int = PAGE_CACHE_BYTES) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[ResultKey, BacktestResult] = OrderedDict()
        self._loading: dict[ResultKey, asyncio.Future[BacktestResult | None]] = {}
        self._page_bytes = page_bytes
        self._pages: OrderedDict[tuple[ResultKey, PageWindow], bytes] = OrderedDict()
        self._pages_size = 0

    async def page(
        self, key: ResultKey, envelope: Mapping[str, Any], result: BacktestResult, window: PageWindow
    ) -> bytes:
        """Return `page_json` of `result` (the result of `key`) cut to `window`, serialised once a window."""
        part = self._pages.get((key, window))
        if part is None:
            part = await result_json_off_loop(result, window)
            self._keep_page((key, window), part)
        else:
            self._pages.move_to_end((key, window))
        return page_json(envelope, result, window, part)

    def _keep_page(self, page: tuple[ResultKey, PageWindow], part: bytes) -> None:
        if page in self._pages or len(part) > self._page_bytes:
            return
        self._pages[page] = part
        self._pages_size += len(part)
        while self._pages_size > self._page_bytes:
            _, dropped = self._pages.popitem(last=False)
            self._pages_size -= len(dropped)

    async def get(
        self, key: ResultKey, load: Callable[[], Awaitable[BacktestResult | None]]
    ) -> BacktestResult | None:
        """Return the cached result of `key`, or await `load()` once for all callers and keep it."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[BacktestResult | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            result = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._loading[key]
        future.set_result(result)
        if result is not None and self._max_entries > 0:
            self._entries[key] = result
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return result


async def stored_result(store: TaskStore, task_id: str, seq: int) -> BacktestResult | None:
    """Decode the task's stored result if the store holds it at `seq` (None otherwise)."""
    record = await store.get(task_id)
    if record is None or record.seq != seq or record.result is None:
        return None
    return await decode_result(record.result)
