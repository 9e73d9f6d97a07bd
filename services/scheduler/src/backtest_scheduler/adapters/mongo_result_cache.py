"""ResultCache on MongoDB collection `backtests` (backtest_core.contracts.records; the results writer's)."""

from __future__ import annotations

from typing import Any

from backtest_core.contracts.records import (
    CACHED_SUCCESS_FIELDS,
    cached_success_filter,
    read_result,
    task_id_of,
)
from pymongo.asynchronous.collection import AsyncCollection

from backtest_scheduler.decisions import CachedResult


class MongoResultCache:
    """Finds a SUCCESS document with the same cache key (indexed on `cache_key` by the results writer)."""

    def __init__(self, backtests: AsyncCollection[dict[str, Any]]) -> None:
        self._backtests = backtests

    async def find_success(self, cache_key: str) -> CachedResult | None:
        doc = await self._backtests.find_one(
            cached_success_filter(cache_key), projection=CACHED_SUCCESS_FIELDS
        )
        if doc is None:
            return None
        return CachedResult(
            task_id=task_id_of(doc),
            user_id=str(doc.get("user_id", "")),
            result=read_result(doc["result"]),
        )
