"""MongoWalkForwardStore: the gateway's insert and reads of the `walkforwards` collection (the sweeper
creates its indexes)."""

from __future__ import annotations

from typing import Any

from backtest_core.contracts import SweepState
from backtest_research.walkforward_records import (
    WALKFORWARDS_COLLECTION,
    WalkForwardRecord,
    read_walkforward,
    walkforward_document,
)
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

Document = dict[str, Any]


class MongoWalkForwardStore:
    """WalkForwardStore on one collection."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._client = client
        self._walkforwards: AsyncCollection[Document] = client[database][WALKFORWARDS_COLLECTION]

    @classmethod
    def connect(cls, uri: str, database: str) -> MongoWalkForwardStore:
        """A store with a client of its own for `uri` (no I/O yet)."""
        return cls(AsyncMongoClient(uri, tz_aware=True), database)

    async def insert(self, record: WalkForwardRecord) -> None:
        await self._walkforwards.insert_one(walkforward_document(record))

    async def delete_pending(self, walkforward_id: str) -> None:
        await self._walkforwards.delete_one({"_id": walkforward_id, "state": SweepState.PENDING.value})

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        document = await self._walkforwards.find_one({"_id": walkforward_id})
        return read_walkforward(document) if document is not None else None

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[WalkForwardRecord], int]:
        query: Document = {} if user_id is None else {"user_id": user_id}
        found = self._walkforwards.find(query).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        documents = await found.skip(offset).limit(limit).to_list()
        return [read_walkforward(d) for d in documents], await self._walkforwards.count_documents(query)

    async def open_count(self, user_id: str) -> int:
        return await self._walkforwards.count_documents({"user_id": user_id, "finished_at": None})
