"""MongoSweepStore: the gateway's insert and reads of the `sweeps` and `sweep_trials` collections."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backtest_core.contracts import SweepState
from backtest_research.sweep_records import (
    OPEN_TRIALS,
    SWEEPS_COLLECTION,
    TRIALS_COLLECTION,
    SweepRecord,
    TrialRecord,
    TrialStatus,
    read_sweep,
    read_trial,
    sweep_document,
)
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from backtest_gateway.ports import SweepOrder

Document = dict[str, Any]
_OPEN = [SweepState.PENDING.value, SweepState.RUNNING.value]


class MongoSweepStore:
    """SweepStore on the sweeper's two collections (the sweeper creates their indexes)."""

    def __init__(self, database: AsyncDatabase[Mapping[str, Any]]) -> None:
        self._sweeps: AsyncCollection[Mapping[str, Any]] = database[SWEEPS_COLLECTION]
        self._trials: AsyncCollection[Mapping[str, Any]] = database[TRIALS_COLLECTION]

    async def insert(self, record: SweepRecord) -> None:
        await self._sweeps.insert_one(sweep_document(record))

    async def delete_pending(self, sweep_id: str) -> None:
        await self._sweeps.delete_one({"_id": sweep_id, "state": SweepState.PENDING.value})

    async def get(self, sweep_id: str) -> SweepRecord | None:
        document = await self._sweeps.find_one({"_id": sweep_id})
        return read_sweep(document) if document is not None else None

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[SweepRecord], int]:
        query: Document = {} if user_id is None else {"user_id": user_id}
        found = self._sweeps.find(query).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        documents = await found.skip(offset).limit(limit).to_list()
        return [read_sweep(d) for d in documents], await self._sweeps.count_documents(query)

    async def open_count(self, user_id: str) -> int:
        # a walk-forward's fold sweeps are counted as its walk-forward (routers/walkforward.py)
        query = {"user_id": user_id, "state": {"$in": _OPEN}, "walkforward_id": None}
        return await self._sweeps.count_documents(query)

    async def trials(
        self, sweep_id: str, order: SweepOrder, limit: int, offset: int, state: TrialStatus | None
    ) -> tuple[list[TrialRecord], int]:
        query: Document = {"sweep_id": sweep_id}
        if state is not None:
            query["state"] = state.value
        key = "id" if order.by == "id" else f"metrics.{order.by}"
        direction = DESCENDING if order.descending else ASCENDING
        found = self._trials.find(query, {"returns": 0}).sort([(key, direction), ("id", ASCENDING)])
        documents = await found.skip(offset).limit(limit).to_list()
        return [read_trial(d) for d in documents], await self._trials.count_documents(query)

    async def ended_since(self, sweep_id: str, since: datetime | None) -> list[TrialRecord]:
        query: Document = {"sweep_id": sweep_id, "state": {"$nin": [s.value for s in OPEN_TRIALS]}}
        if since is not None:
            query["updated_at"] = {"$gte": since}
        found = self._trials.find(query, {"returns": 0}).sort([("updated_at", ASCENDING), ("id", ASCENDING)])
        return [read_trial(d) async for d in found]
