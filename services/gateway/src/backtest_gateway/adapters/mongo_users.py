"""MongoUserStore: the `users` collection (written by `backtest user add`, read at sign-in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backtest_core.contracts.accounts import USERS
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.read_preferences import Primary

from backtest_gateway.users import StoredUser

Document = Mapping[str, Any]


class MongoUserStore:
    """Reads on the primary, so a user just added can sign in at once."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._coll: AsyncCollection[Document] = db.get_collection(USERS, read_preference=Primary())

    async def get(self, name: str) -> StoredUser | None:
        """Return the user whose `_id` is `name`, or None."""
        doc = await self._coll.find_one({"_id": name})
        if doc is None:
            return None
        return StoredUser(
            name=str(doc["_id"]), role=str(doc["role"]), password_hash=str(doc["password_hash"])
        )
