"""MongoStrategyStore: users' uploaded strategies in MongoDB.

`strategies` holds the latest version, one document per (user, name); `strategy_versions` holds every
version ever stored, one document per (user, name, version), written once and never changed. A latest
document stored before `strategy_versions` existed is copied there before it is replaced or deleted.
"""

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
STRATEGY_VERSIONS = "strategy_versions"

Document = Mapping[str, Any]


def _id(user_id: str, name: str) -> str:
    return f"{user_id}/{name}"


def _version_id(record: StrategyRecord) -> str:
    return f"{record.user_id}/{record.name}/{record.version}"


def _version_doc(record: StrategyRecord) -> dict[str, Any]:
    return {"_id": _version_id(record), **record.model_dump()}


class MongoStrategyStore:
    """Writes on the primary with majority write concern; reads on the primary too (read-your-writes:
    an update's version check must see the last update)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._coll: AsyncCollection[Document] = db.get_collection(
            STRATEGIES, read_preference=Primary(), write_concern=WriteConcern("majority")
        )
        self._versions: AsyncCollection[Document] = db.get_collection(
            STRATEGY_VERSIONS, read_preference=Primary(), write_concern=WriteConcern("majority")
        )

    async def create_indexes(self) -> None:
        """Create the unique (user_id, name) index used by lookups and listings (idempotent)."""
        await self._coll.create_index(
            [("user_id", ASCENDING), ("name", ASCENDING)], name="user_name", unique=True
        )
        await self._versions.create_index(
            [("user_id", ASCENDING), ("name", ASCENDING), ("version", ASCENDING)],
            name="user_name_version",
            unique=True,
        )

    async def insert(self, record: StrategyRecord) -> bool:
        """Insert; False if the user already has a strategy of that name (or had that version)."""
        try:
            await self._versions.insert_one(_version_doc(record))
        except DuplicateKeyError:
            return False
        try:
            await self._coll.insert_one({"_id": _id(record.user_id, record.name), **record.model_dump()})
        except DuplicateKeyError:
            await self._versions.delete_one({"_id": _version_id(record)})
            return False
        return True

    async def get_version(self, user_id: str, name: str, version: int) -> StrategyRecord | None:
        """Return one stored version, or None."""
        doc = await self._versions.find_one({"_id": f"{user_id}/{name}/{version}"})
        if doc is None:
            latest = await self.get(user_id, name)
            return latest if latest is not None and latest.version == version else None
        return StrategyRecord.model_validate(doc)

    async def versions(self, user_id: str, name: str) -> list[StrategyRecord]:
        """Return every stored version, oldest first (with a latest one stored before versions were kept)."""
        cursor = self._versions.find({"user_id": user_id, "name": name}).sort("version", ASCENDING)
        found: dict[int, StrategyRecord] = {}
        async for doc in cursor:
            record = StrategyRecord.model_validate(doc)
            found[record.version] = record
        latest = await self.get(user_id, name)
        if latest is not None:
            found.setdefault(latest.version, latest)
        return [found[v] for v in sorted(found)]

    async def _keep_version(self, record: StrategyRecord) -> None:
        """Copy a latest version into `strategy_versions` unless it is there already."""
        await self._versions.update_one(
            {"_id": _version_id(record)}, {"$setOnInsert": _version_doc(record)}, upsert=True
        )

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
        """Add a version if the latest is still `expected_version` (optimistic concurrency)."""
        latest = await self.get(record.user_id, record.name)
        if latest is None or latest.version != expected_version:
            return False
        await self._keep_version(latest)
        try:
            await self._versions.insert_one(_version_doc(record))
        except DuplicateKeyError:
            return False
        result = await self._coll.replace_one(
            {"_id": _id(record.user_id, record.name), "version": expected_version},
            {"_id": _id(record.user_id, record.name), **record.model_dump()},
        )
        return result.matched_count == 1

    async def delete(self, user_id: str, name: str) -> bool:
        """Delete the latest version's document (every version stays); False if absent."""
        latest = await self.get(user_id, name)
        if latest is None:
            return False
        await self._keep_version(latest)
        return (await self._coll.delete_one({"_id": _id(user_id, name)})).deleted_count == 1

    async def count(self, user_id: str) -> int:
        """Count the user's strategies."""
        return await self._coll.count_documents({"user_id": user_id})
