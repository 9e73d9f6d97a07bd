"""MongoSweepStore: the sweeper's reads and writes of the `sweeps` and `sweep_trials` collections."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
from backtest_core.contracts import TERMINAL_SWEEP_STATES, SweepState, TaskState
from backtest_core.contracts.records import BACKTESTS_COLLECTION, metric_field, same_setup_filter
from backtest_core.metrics.performance import equity_returns
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import pack_returns
from backtest_research.overfitting import metrics_per_bar_sharpe
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
    trial_document,
)
from pymongo import ASCENDING, DESCENDING, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from backtest_sweeper.ports import Reused

Document = dict[str, Any]
_ENDED = [state.value for state in TERMINAL_SWEEP_STATES]
_OPEN = [state.value for state in OPEN_TRIALS]
_NO_RETURNS = {"returns": 0}  # a trial read to be advanced or shown, not ranked: its returns stay stored


class MongoSweepStore:
    """SweepStore on two collections of one database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._sweeps: AsyncCollection[Document] = database[SWEEPS_COLLECTION]
        self._trials: AsyncCollection[Document] = database[TRIALS_COLLECTION]
        self._backtests: AsyncCollection[Document] = database[BACKTESTS_COLLECTION]

    async def ensure_indexes(self) -> None:
        """The indexes the sweeper's and the gateway's queries use."""
        await self._sweeps.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        await self._sweeps.create_index([("state", ASCENDING)])
        await self._trials.create_index([("task_id", ASCENDING)])
        await self._trials.create_index([("cache_key", ASCENDING)])
        await self._trials.create_index([("sweep_id", ASCENDING), ("state", ASCENDING), ("id", ASCENDING)])
        await self._trials.create_index([("sweep_id", ASCENDING), ("id", ASCENDING)])
        await self._trials.create_index([("sweep_id", ASCENDING), ("updated_at", ASCENDING)])  # the stream

    async def insert(self, record: SweepRecord) -> None:
        """Store a new sweep (the gateway's one write)."""
        await self._sweeps.insert_one(sweep_document(record))

    async def add_sweeps(self, records: list[SweepRecord]) -> None:
        """Store new sweeps (a walk-forward's folds); one stored already is left as it is."""
        writes = [
            UpdateOne({"_id": document["_id"]}, {"$setOnInsert": document}, upsert=True)
            for document in map(sweep_document, records)
        ]
        if writes:
            await self._sweeps.bulk_write(writes, ordered=False)

    async def get(self, sweep_id: str) -> SweepRecord | None:
        document = await self._sweeps.find_one({"_id": sweep_id})
        return read_sweep(document) if document is not None else None

    async def update(self, sweep_id: str, fields: Mapping[str, Any]) -> None:
        await self._sweeps.update_one({"_id": sweep_id, "finished_at": None}, {"$set": dict(fields)})

    async def set_state(self, sweep_id: str, state: SweepState, fields: Mapping[str, Any]) -> bool:
        done = await self._sweeps.update_one(
            {"_id": sweep_id, "state": {"$nin": _ENDED}}, {"$set": {**fields, "state": state.value}}
        )
        return done.matched_count == 1

    async def open_sweeps(self) -> list[str]:
        found = self._sweeps.find({"state": {"$nin": _ENDED}}, {"_id": 1})
        return [document["_id"] async for document in found]

    async def add_trials(self, trials: list[TrialRecord]) -> None:
        if not trials:
            return
        writes = [
            UpdateOne({"_id": document["_id"]}, {"$setOnInsert": document}, upsert=True)
            for document in map(trial_document, trials)
        ]
        for start in range(0, len(writes), 1000):
            await self._trials.bulk_write(writes[start : start + 1000], ordered=False)

    async def trials(
        self, sweep_id: str, states: tuple[TrialStatus, ...] | None = None, limit: int = 0
    ) -> list[TrialRecord]:
        query: Document = {"sweep_id": sweep_id}
        if states is not None:
            query["state"] = {"$in": [s.value for s in states]}
        found = self._trials.find(query).sort("id", ASCENDING).limit(limit)
        return [read_trial(document) async for document in found]

    async def trials_of_task(self, task_id: str) -> list[TrialRecord]:
        found = self._trials.find({"task_id": task_id}, _NO_RETURNS).sort("id", ASCENDING)
        return [read_trial(document) async for document in found]

    async def save_trials(self, trials: list[TrialRecord]) -> int:
        writes = []
        for document in map(trial_document, trials):
            query = {"_id": document.pop("_id"), "state": {"$in": _OPEN}}
            writes.append(UpdateOne(query, {"$set": document}))
        if not writes:
            return 0
        done = await self._trials.bulk_write(writes, ordered=False)
        return done.matched_count

    async def mark_submitted(self, sweep_id: str, chunks: Mapping[str, list[int]], now: datetime) -> None:
        writes = [
            UpdateMany(
                {"sweep_id": sweep_id, "id": {"$in": trials}, "state": TrialStatus.PLANNED.value},
                {"$set": {"state": TrialStatus.SUBMITTED.value, "task_id": task_id, "updated_at": now}},
            )
            for task_id, trials in chunks.items()
        ]
        if writes:
            await self._trials.bulk_write(writes, ordered=False)

    async def reusable(self, keys: list[str]) -> dict[str, Reused]:
        found: dict[str, Reused] = {}
        if not keys:
            return found
        ended = {"cache_key": {"$in": keys}, "state": TrialStatus.SUCCESS.value, "returns": {"$ne": None}}
        async for document in self._trials.find(ended, {"cache_key": 1, "metrics": 1, "returns": 1}):
            found.setdefault(document["cache_key"], Reused(document["metrics"], document["returns"]))
        rest = [key for key in keys if key not in found]
        if rest:
            fields = {"cache_key": 1, "result.metrics": 1, "result.equity_curve.equity": 1}
            query = {"cache_key": {"$in": rest}, "state": TaskState.SUCCESS.value, "result": {"$ne": None}}
            async for document in self._backtests.find(query, fields):
                result = document["result"]
                curve = np.array([p["equity"] for p in result.get("equity_curve", [])], dtype=np.float64)
                found.setdefault(
                    document["cache_key"], Reused(result["metrics"], pack_returns(equity_returns(curve)))
                )
        return found

    async def cancel_planned(self, sweep_id: str, now: datetime) -> None:
        await self._trials.update_many(
            {"sweep_id": sweep_id, "state": TrialStatus.PLANNED.value},
            {"$set": {"state": TrialStatus.CANCELLED.value, "updated_at": now}},
        )

    async def counts(self, sweep_id: str) -> dict[TrialStatus, int]:
        pipeline: list[Document] = [
            {"$match": {"sweep_id": sweep_id}},
            {"$group": {"_id": "$state", "n": {"$sum": 1}}},
        ]
        rows = await (await self._trials.aggregate(pipeline)).to_list()
        return {TrialStatus(row["_id"]): int(row["n"]) for row in rows}

    async def best(self, sweep_id: str) -> TrialRecord | None:
        found = self._trials.find({"sweep_id": sweep_id, "score": {"$ne": None}}, _NO_RETURNS)
        best = await found.sort([("score", DESCENDING), ("id", ASCENDING)]).limit(1).to_list()
        return read_trial(best[0]) if best else None

    async def other_sharpes(self, user_id: str, config: BacktestConfig, sweep_id: str) -> list[float]:
        fields = {"_id": 1, metric_field("sharpe"): 1, metric_field("periods_per_year"): 1}
        metrics = [
            document.get("result", {}).get("metrics")
            async for document in self._backtests.find(same_setup_filter(user_id, config), fields)
        ]
        setup = config.model_dump(mode="json")
        sweeps = self._sweeps.find(
            {
                "user_id": user_id,
                "_id": {"$ne": sweep_id},
                "config.strategy": setup["strategy"],
                "config.symbols": setup["symbols"],
                "config.interval": setup["interval"],
            },
            {"_id": 1},
        )
        others = [document["_id"] async for document in sweeps]
        if others:
            trials = self._trials.find(
                {"sweep_id": {"$in": others}, "state": TrialStatus.SUCCESS.value}, {"metrics": 1}
            )
            metrics += [document.get("metrics") async for document in trials]
        return [s for s in map(metrics_per_bar_sharpe, metrics) if s is not None]
