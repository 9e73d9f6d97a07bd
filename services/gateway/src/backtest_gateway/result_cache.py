"""The last few decoded results, so paging through one reads and decodes it once, not once per page."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from backtest_core.results import BacktestResult

from backtest_gateway.ports import TaskStore
from backtest_gateway.result_pages import decode_result

# (task id, seq): a SUCCESS result never changes once stored, so the stored seq names it.
ResultKey = tuple[str, int]


class ResultCache:
    """An LRU of at most `max_entries` decoded results; concurrent misses of one key load it once."""

    def __init__(self, max_entries: int = 4) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[ResultKey, BacktestResult] = OrderedDict()
        self._loading: dict[ResultKey, asyncio.Future[BacktestResult | None]] = {}

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
