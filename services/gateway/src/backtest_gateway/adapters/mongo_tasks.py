"""MongoTaskStore: backtests in MongoDB; writes to the primary (w=majority), reads secondary-preferred."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from backtest_core.contracts import TaskState
from backtest_core.contracts.records import (
    BACKTEST_INDEXES,
    BACKTESTS_COLLECTION,
    WITHOUT_RESULT,
    BacktestDocument,
    metric_field,
    submitted_document,
    task_id_of,
)
from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from pymongo.read_preferences import Primary, SecondaryPreferred
from pymongo.write_concern import WriteConcern

from backtest_gateway.ports import (
    IdempotencyClaim,
    MetricQuery,
    RankedPage,
    RankedTask,
    TaskFilter,
    TaskPage,
    TaskRecord,
)

IDEMPOTENCY_KEYS = "idempotency_keys"
_SEQ_PROJECTION = {"seq": True}
_RANKED_PROJECTION = {
    "user_id": True,
    "config": True,
    "strategy_ref": True,
    "created_at": True,
    "result.metrics": True,
}

Document = Mapping[str, Any]


def record_from_document(doc: Document) -> TaskRecord:
    """Build a TaskRecord from a stored document (`_id` is the task id; progress is nested)."""
    data = dict(doc)
    data.setdefault("task_id", task_id_of(doc))
    progress = data.get("progress")
    if isinstance(progress, Mapping):
        data["progress"] = progress.get("fraction")
        data.setdefault("stage", progress.get("stage"))
    return TaskRecord.model_validate(data)


def submission_document(record: TaskRecord) -> BacktestDocument:
    """Build the document of a new submission (PENDING, seq 0) from its record."""
    if record.config is None or record.created_at is None:
        raise ValueError(
            f"a submission needs its config and created_at, was config={record.config!r}, "
            f"created_at={record.created_at!r}"
        )
    strategy_ref = record.strategy_ref.model_dump(mode="json") if record.strategy_ref is not None else None
    return submitted_document(
        record.task_id,
        record.user_id,
        record.config,
        created_at=record.created_at,
        idempotency_key=record.idempotency_key,
        strategy_ref=strategy_ref,
    )


def _key_id(user_id: str, key: str) -> str:
    return hashlib.sha256(json.dumps([user_id, key]).encode()).hexdigest()


class MongoTaskStore:
    """The `backtests` collection (shared with the results writer) and the gateway's idempotency keys."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        majority = WriteConcern("majority")
        self._primary: AsyncCollection[Document] = db.get_collection(
            BACKTESTS_COLLECTION, read_preference=Primary(), write_concern=majority
        )
        self._secondary: AsyncCollection[Document] = db.get_collection(
            BACKTESTS_COLLECTION, read_preference=SecondaryPreferred()
        )
        self._keys: AsyncCollection[Document] = db.get_collection(
            IDEMPOTENCY_KEYS, read_preference=Primary(), write_concern=majority
        )

    @classmethod
    def connect(cls, uri: str, db_name: str) -> tuple[MongoTaskStore, AsyncMongoClient[Document]]:
        """Create a client for `uri` (no I/O yet) and the store over database `db_name`."""
        client: AsyncMongoClient[Document] = AsyncMongoClient(uri, tz_aware=True)
        return cls(client[db_name]), client

    async def create_indexes(self) -> None:
        """Create the collection's indexes (idempotent; the results writer creates the same ones)."""
        for index in BACKTEST_INDEXES:
            await self._primary.create_index(list(index.keys), name=index.name)

    async def insert_pending(self, record: TaskRecord) -> None:
        """Insert the PENDING submission on the primary with majority write concern."""
        await self._primary.insert_one(submission_document(record))

    async def delete_pending(self, task_id: str) -> None:
        """Delete the submission if it is still PENDING at seq 0."""
        await self._primary.delete_one({"_id": task_id, "seq": 0, "state": TaskState.PENDING.value})

    async def get(self, task_id: str) -> TaskRecord | None:
        """Read from a secondary; on a miss (replication lag) read the primary."""
        doc = await self._secondary.find_one({"_id": task_id})
        if doc is None:
            doc = await self._primary.find_one({"_id": task_id})
        return None if doc is None else record_from_document(doc)

    async def get_without_result(self, task_id: str) -> TaskRecord | None:
        """Read like `get`, leaving the result out."""
        doc = await self._secondary.find_one({"_id": task_id}, WITHOUT_RESULT)
        if doc is None:
            doc = await self._primary.find_one({"_id": task_id}, WITHOUT_RESULT)
        return None if doc is None else record_from_document(doc)

    async def stored_seq(self, task_id: str) -> int | None:
        """Read `seq` alone, from a secondary like `get`; on a miss read the primary."""
        doc = await self._secondary.find_one({"_id": task_id}, _SEQ_PROJECTION)
        if doc is None:
            doc = await self._primary.find_one({"_id": task_id}, _SEQ_PROJECTION)
        return None if doc is None else int(doc.get("seq", 0))

    async def page(self, user_id: str | None, where: TaskFilter, limit: int, offset: int) -> TaskPage:
        """Return one page of tasks, newest first, without their (large) results."""
        query: dict[str, Any] = {}
        if user_id is not None:
            query["user_id"] = user_id
        if where.state is not None:
            query["state"] = where.state.value
        if where.symbol is not None:
            query["config.symbols"] = where.symbol
        if where.strategy is not None:  # the names ports.strategy_names gives
            query["$or"] = [
                {field: where.strategy}
                for field in (
                    "config.strategy",
                    "config.strategy.builtin",
                    "config.strategy.name",
                    "strategy_ref.name",
                )
            ]
        cursor = (
            self._secondary.find(query, WITHOUT_RESULT)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        items = [record_from_document(doc) async for doc in cursor]
        total = await self._secondary.count_documents(query)
        return TaskPage(items=items, total=total)

    async def ranked(self, user_id: str | None, query: MetricQuery) -> RankedPage:
        """Rank SUCCESS tasks by `result.metrics.<metric>` (nulls excluded), ties by task id."""
        field = metric_field(query.metric)
        bounds: dict[str, Any] = {"$ne": None}
        if query.min_value is not None:
            bounds["$gte"] = query.min_value
        if query.max_value is not None:
            bounds["$lte"] = query.max_value
        match: dict[str, Any] = {"state": TaskState.SUCCESS.value, field: bounds}
        if user_id is not None:
            match["user_id"] = user_id
        direction = DESCENDING if query.descending else 1
        cursor = (
            self._secondary.find(match, _RANKED_PROJECTION)
            .sort([(field, direction), ("_id", 1)])
            .skip(query.offset)
            .limit(query.limit)
        )
        items = []
        async for doc in cursor:
            data = {k: v for k, v in doc.items() if k != "result"}
            data["task_id"] = str(doc["_id"])
            data["metrics"] = doc["result"]["metrics"]
            items.append(RankedTask.model_validate(data))
        total = await self._secondary.count_documents(match)
        return RankedPage(items=items, total=total)

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """Insert the binding; if it exists (unique `_id`), return the existing one."""
        key_id = _key_id(user_id, key)
        try:
            await self._keys.insert_one(
                {
                    "_id": key_id,
                    "user_id": user_id,
                    "key": key,
                    "task_id": task_id,
                    "config_hash": config_hash,
                }
            )
        except DuplicateKeyError:
            doc = await self._keys.find_one({"_id": key_id})
            if doc is None:  # released between our insert and read: try once more
                return await self.claim_idempotency_key(user_id, key, task_id, config_hash)
            return IdempotencyClaim(task_id=doc["task_id"], config_hash=doc["config_hash"])
        return IdempotencyClaim(task_id=task_id, config_hash=config_hash)

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """Delete the binding if it still points at task_id."""
        await self._keys.delete_one({"_id": _key_id(user_id, key), "task_id": task_id})
