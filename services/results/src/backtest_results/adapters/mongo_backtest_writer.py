"""BacktestWriter on MongoDB: conditional upserts by task id with majority write concern."""

from __future__ import annotations

from typing import Any

from backtest_core.contracts import BacktestEvent
from backtest_core.contracts.records import BACKTEST_INDEXES, fact_fields, state_fields
from pymongo import WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from backtest_results.documents import WriteOutcome


class MongoBacktestWriter:
    """Upserts one document per task in `backtests` only if the stored `seq` is lower.

    The filter `{_id, seq < event.seq}` matches nothing when the stored state is as new or newer;
    the upsert then tries to insert a second document with the same `_id` and fails with E11000,
    which is the signal that the event was stale. Every write waits for a majority of the replica set.
    """

    def __init__(self, backtests: AsyncCollection[dict[str, Any]]) -> None:
        self._backtests = backtests.with_options(write_concern=WriteConcern(w="majority"))

    @property
    def write_concern(self) -> WriteConcern:
        """Return the write concern every write uses."""
        return self._backtests.write_concern

    async def ensure_indexes(self) -> None:
        """Create the indexes readers rely on (cache lookups, a user's backtests newest first)."""
        for index in BACKTEST_INDEXES:
            await self._backtests.create_index(list(index.keys), name=index.name)

    async def apply(self, event: BacktestEvent) -> WriteOutcome:
        try:
            await self._backtests.update_one(
                {"_id": event.task_id, "seq": {"$lt": event.seq}},
                {"$set": state_fields(event), "$setOnInsert": {"created_at": event.occurred_at}},
                upsert=True,
            )
            outcome = WriteOutcome.APPLIED
        except DuplicateKeyError:
            outcome = WriteOutcome.STALE
        facts = fact_fields(event)
        if facts:
            await self._backtests.update_one(
                {"_id": event.task_id}, {"$set": facts, "$setOnInsert": {"seq": 0}}, upsert=True
            )
        return outcome
