"""The gateway's MongoDB adapters on the MongoDB-compatible server: strategies and metric ranking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from backtest_core.contracts import TaskState, new_id
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_gateway.adapters.mongo_strategies import MongoStrategyStore
from backtest_gateway.adapters.mongo_tasks import MongoTaskStore
from backtest_gateway.ports import MetricQuery, StrategyRecord, TaskFilter
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    name = f"gwstores_{new_id()[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


def record(user: str, name: str, version: int = 1) -> StrategyRecord:
    return StrategyRecord(
        user_id=user,
        name=name,
        source="x",
        class_name="X",
        params={"n": 3},
        version=version,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_strategy_names_are_unique_per_user_and_replace_checks_the_version(db):
    store = MongoStrategyStore(db)
    await store.create_indexes()

    assert await store.insert(record("alice", "s"))
    assert not await store.insert(record("alice", "s"))
    assert await store.insert(record("bob", "s"))
    assert await store.replace(record("alice", "s", version=2), expected_version=1)
    assert not await store.replace(record("alice", "s", version=3), expected_version=1)

    stored = await store.get("alice", "s")
    assert (stored.version, stored.params) == (2, {"n": 3})
    assert [r.user_id for r in (await store.page("alice", 10, 0)).items] == ["alice"]
    assert (await store.page(None, 10, 0)).total == 2
    assert await store.delete("alice", "s")
    assert not await store.delete("alice", "s")
    assert await store.count("bob") == 1


async def test_every_version_stays_readable_after_updates_and_delete_and_numbers_continue(db):
    store = MongoStrategyStore(db)
    await store.create_indexes()
    await store.insert(record("alice", "s"))
    v2 = record("alice", "s", version=2).model_copy(update={"source": "y", "files": {"helpers.py": "K = 2"}})
    await store.replace(v2, expected_version=1)

    assert await store.delete("alice", "s")
    assert await store.get("alice", "s") is None
    assert [(r.version, r.source, r.files) for r in await store.versions("alice", "s")] == [
        (1, "x", {}),
        (2, "y", {"helpers.py": "K = 2"}),
    ]
    assert (await store.get_version("alice", "s", 1)).source == "x"  # type: ignore[union-attr]
    assert not await store.insert(record("alice", "s", version=2))  # a number is never reused
    assert await store.insert(record("alice", "s", version=3))
    assert [r.version for r in await store.versions("alice", "s")] == [1, 2, 3]


async def test_a_latest_version_stored_before_versions_were_kept_is_kept_when_updated(db):
    store = MongoStrategyStore(db)
    await store.create_indexes()
    legacy = record("alice", "old", version=4)
    await db["strategies"].insert_one({"_id": "alice/old", **legacy.model_dump()})

    assert [r.version for r in await store.versions("alice", "old")] == [4]
    assert await store.replace(record("alice", "old", version=5), expected_version=4)
    assert (await store.get_version("alice", "old", 4)) == legacy
    assert [r.version for r in await store.versions("alice", "old")] == [4, 5]


async def test_ranking_by_metric_filters_owner_state_nulls_and_bounds(db):
    docs = [
        ("a1", "alice", "SUCCESS", 1.5),
        ("a2", "alice", "SUCCESS", 0.2),
        ("a3", "alice", "SUCCESS", None),
        ("a4", "alice", "FAILURE", 9.0),
        ("b1", "bob", "SUCCESS", 3.0),
    ]
    await db[BACKTESTS_COLLECTION].insert_many(
        [
            {
                "_id": t,
                "user_id": u,
                "state": s,
                "seq": 4,
                "created_at": NOW,
                "result": {"metrics": {"sharpe": v, "trade_count": 3}, "trades": [1, 2, 3]},
            }
            for t, u, s, v in docs
        ]
    )
    store = MongoTaskStore(db)

    mine = await store.ranked("alice", MetricQuery(metric="sharpe"))
    bounded = await store.ranked(None, MetricQuery(metric="sharpe", descending=False, min_value=1.0))

    assert [(i.task_id, i.metrics["sharpe"]) for i in mine.items] == [("a1", 1.5), ("a2", 0.2)]
    assert mine.total == 2
    assert [i.task_id for i in bounded.items] == ["a1", "b1"]


async def test_the_list_filters_by_state_strategy_name_and_symbol_as_stored(db):
    def doc(task: str, strategy: object, symbols: list[str], state: str = "SUCCESS") -> dict:
        config = {"strategy": strategy, "symbols": symbols, "interval": "1d"}
        return {
            "_id": task,
            "user_id": "alice",
            "state": state,
            "seq": 3,
            "created_at": NOW,
            "config": config,
        }

    uploaded = {"source": "class S: ...", "name": "breakout", "version": 2}
    await db[BACKTESTS_COLLECTION].insert_many(
        [
            doc("t1", "sma_cross", ["BTCUSD"]),
            doc("t2", {"builtin": "sma_cross"}, ["ETHUSD", "BTCUSD"], state="FAILURE"),
            doc("t3", uploaded, ["ETHUSD"])
            | {"strategy_ref": {"owner": "alice", "name": "breakout", "version": 2}},
            doc("t4", "rsi_reversion", ["LTCUSD"]),
        ]
    )
    store = MongoTaskStore(db)

    async def ids(**where: object) -> list[str]:
        page = await store.page("alice", TaskFilter(**where), 10, 0)
        return sorted(r.task_id for r in page.items)

    assert await ids(strategy="sma_cross") == ["t1", "t2"]  # by name, as a string or a built-in object
    assert await ids(strategy="breakout") == ["t3"]  # an uploaded strategy by its name
    assert await ids(symbol="BTCUSD") == ["t1", "t2"]
    assert await ids(symbol="ETHUSD", strategy="sma_cross") == ["t2"]
    assert await ids(state=TaskState.SUCCESS, symbol="ETHUSD") == ["t3"]
    assert await ids(strategy="none_such") == []
    records = (await store.page("alice", TaskFilter(), 10, 0)).items
    assert {r.task_id: TaskFilter(strategy="sma_cross").matches(r) for r in records} == {
        "t1": True,
        "t2": True,
        "t3": False,
        "t4": False,
    }  # the in-memory store's test agrees with the query
