"""ResultCache on MongoDB collection `backtests` (written by the results service)."""

from __future__ import annotations

from typing import Any

from backtest_core.contracts import TaskState
from backtest_core.results import BacktestResult
from pymongo.asynchronous.collection import AsyncCollection

from backtest_scheduler.decisions import CachedResult

BACKTESTS_COLLECTION = "backtests"


class MongoResultCache:
    """Finds a SUCCESS document with the same cache key (indexed on `cache_key` by the results writer)."""

    def __init__(self, backtests: AsyncCollection[dict[str, Any]]) -> None:
        self._backtests = backtests

    async def find_success(self, cache_key: str) -> CachedResult | None:
        doc = await self._backtests.find_one(
            {"cache_key": cache_key, "state": TaskState.SUCCESS.value, "result": {"$ne": None}},
            projection={"_id": 1, "user_id": 1, "result": 1},
        )
        if doc is None:
            return None
        return CachedResult(
            task_id=str(doc["_id"]),
            user_id=str(doc.get("user_id", "")),
            result=BacktestResult.model_validate(doc["result"]),
        )
