"""MongoStrategyStore: users' uploaded strategies in MongoDB `strategies`, one document per (user, name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from pymongo.read_preferences import Primary
from pymongo.write_concern import WriteConcern

from backtest_gateway.ports import StrategyPage, StrategyRecord

STRATEGIES = "strategies"

Document = Mapping[str, Any]


def _id(user_id: str, name: str) -> str:
    return f"{user_id}/{name}"


class MongoStrategyStore:
    """Writes on the primary with majority write concern; reads on the primary too (read-your-writes:
    an update's version check must see the last update)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._coll: AsyncCollection[Document] = db.get_collection(
            STRATEGIES, read_preference=Primary(), write_concern=WriteConcern("majority")
        )

    async def create_indexes(self) -> None:
        """Create the unique (user_id, name) index used by lookups and listings (idempotent)."""
        await self._coll.create_index(
            [("user_id", ASCENDING), ("name", ASCENDING)], name="user_name", unique=True
        )

    async def insert(self, record: StrategyRecord) -> bool:
        """Insert; False if the user already has a strategy of that name."""
        try:
            await self._coll.insert_one({"_id": _id(record.user_id, record.name), **record.model_dump()})
        except DuplicateKeyError:
            return False
        return True

    async def get(self, user_id: str, name: str) -> StrategyRecord | None:
        """Return the strategy or None."""
        doc = await self._coll.find_one({"_id": _id(user_id, name)})
        return None if doc is None else StrategyRecord.model_validate(doc)

    async def page(self, user_id: str | None, limit: int, offset: int) -> StrategyPage:
        """Return one page sorted by user, then name."""
        query: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
        cursor = (
            self._coll.find(query)
            .sort([("user_id", ASCENDING), ("name", ASCENDING)])
            .skip(offset)
            .limit(limit)
        )
        items = [StrategyRecord.model_validate(doc) async for doc in cursor]
        return StrategyPage(items=items, total=await self._coll.count_documents(query))

    async def replace(self, record: StrategyRecord, expected_version: int) -> bool:
        """Replace if the stored version is still `expected_version` (optimistic concurrency)."""
        result = await self._coll.replace_one(
            {"_id": _id(record.user_id, record.name), "version": expected_version},
            {"_id": _id(record.user_id, record.name), **record.model_dump()},
        )
        return result.matched_count == 1

    async def delete(self, user_id: str, name: str) -> bool:
        """Delete; False if absent."""
        return (await self._coll.delete_one({"_id": _id(user_id, name)})).deleted_count == 1

    async def count(self, user_id: str) -> int:
        """Count the user's strategies."""
        return await self._coll.count_documents({"user_id": user_id})
