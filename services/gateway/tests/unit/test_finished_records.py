"""FinishedRecords answers finished tasks from memory and everything still moving from the store."""

from __future__ import annotations

import asyncio

from backtest_core.contracts import TaskState
from backtest_core.model.config import BacktestConfig
from backtest_gateway.finished_records import FinishedRecords
from backtest_gateway.ports import TaskRecord
from gateway_fakes import InMemoryTaskStore

CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"])


class CountingStore(InMemoryTaskStore):
    """Counts reads that would be database round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_without_result(self, task_id: str) -> TaskRecord | None:
        self.reads += 1
        return await super().get_without_result(task_id)

    async def stored_seq(self, task_id: str) -> int | None:
        self.reads += 1
        return await super().stored_seq(task_id)


def record(task_id: str, state: TaskState, seq: int, config: BacktestConfig | None = CONFIG) -> TaskRecord:
    return TaskRecord(task_id=task_id, user_id="alice", state=state, seq=seq, config=config)


def test_a_finished_record_is_read_from_the_store_once() -> None:
    inner = CountingStore()
    inner.put(record("t1", TaskState.SUCCESS, 4))
    store = FinishedRecords(inner)

    async def read_three_times() -> list[int | None]:
        seqs = []
        for _ in range(3):
            found = await store.get_without_result("t1")
            seqs.append(found.seq if found else None)
        seqs.append(await store.stored_seq("t1"))
        return seqs

    assert asyncio.run(read_three_times()) == [4, 4, 4, 4]
    assert inner.reads == 1


def test_a_moving_record_is_read_every_time_and_seen_advancing() -> None:
    inner = CountingStore()
    inner.put(record("t1", TaskState.STARTED, 2))
    store = FinishedRecords(inner)

    async def read_advance_read() -> list[TaskState | None]:
        first = await store.get_without_result("t1")
        inner.put(record("t1", TaskState.FAILURE, 3))
        second = await store.get_without_result("t1")
        third = await store.get_without_result("t1")
        return [r.state if r else None for r in (first, second, third)]

    assert asyncio.run(read_advance_read()) == [TaskState.STARTED, TaskState.FAILURE, TaskState.FAILURE]
    assert inner.reads == 2  # STARTED and the first FAILURE read; the second FAILURE from memory


def test_a_finished_record_without_its_facts_is_not_kept() -> None:
    """The write-once facts (config) may land after the terminal state: keep only complete records."""
    inner = CountingStore()
    inner.put(record("t1", TaskState.SUCCESS, 4, config=None))
    store = FinishedRecords(inner)

    async def read_twice() -> None:
        await store.get_without_result("t1")
        inner.put(record("t1", TaskState.SUCCESS, 4))
        found = await store.get_without_result("t1")
        assert found is not None and found.config == CONFIG

    asyncio.run(read_twice())
    assert inner.reads == 2


def test_at_most_max_entries_are_kept_least_recently_used_first_out() -> None:
    inner = CountingStore()
    for task_id in ("a", "b", "c"):
        inner.put(record(task_id, TaskState.CANCELLED, 3))
    store = FinishedRecords(inner, max_entries=2)

    async def read(*task_ids: str) -> None:
        for task_id in task_ids:
            await store.get_without_result(task_id)

    asyncio.run(read("a", "b", "a", "c"))  # c evicts b (a was used more recently)
    assert inner.reads == 3
    asyncio.run(read("a", "c"))
    assert inner.reads == 3
    asyncio.run(read("b"))
    assert inner.reads == 4
