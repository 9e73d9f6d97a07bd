"""MongoWalkForwardStore: the sweeper's reads and writes of the `walkforwards` collection."""

from __future__ import annotations

from typing import Any

from backtest_research.walkforward_records import (
    WALKFORWARDS_COLLECTION,
    FoldState,
    WalkForwardRecord,
    read_walkforward,
    walkforward_document,
)
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


class MongoWalkForwardStore:
    """WalkForwardStore on one collection; a walk-forward's folds are inside its document."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._walkforwards: AsyncCollection[Document] = database[WALKFORWARDS_COLLECTION]

    async def ensure_indexes(self) -> None:
        """The indexes the sweeper's and the gateway's queries use."""
        await self._walkforwards.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        await self._walkforwards.create_index([("finished_at", ASCENDING)])
        await self._walkforwards.create_index([("folds.sweep_id", ASCENDING)])
        await self._walkforwards.create_index([("folds.test_task_id", ASCENDING)])

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        document = await self._walkforwards.find_one({"_id": walkforward_id})
        return read_walkforward(document) if document is not None else None

    async def save(self, record: WalkForwardRecord) -> bool:
        document = walkforward_document(record)
        done = await self._walkforwards.replace_one({"_id": document["_id"], "finished_at": None}, document)
        return done.matched_count == 1

    async def open_walkforwards(self) -> list[str]:
        found = self._walkforwards.find({"finished_at": None}, {"_id": 1})
        return [document["_id"] async for document in found]

    async def of_sweep(self, sweep_id: str) -> str | None:
        document = await self._walkforwards.find_one({"folds.sweep_id": sweep_id}, {"_id": 1})
        return document["_id"] if document is not None else None

    async def of_test_task(self, task_id: str) -> str | None:
        query = {"folds": {"$elemMatch": {"test_task_id": task_id, "state": FoldState.TESTING.value}}}
        document = await self._walkforwards.find_one(query, {"_id": 1})
        return document["_id"] if document is not None else None
