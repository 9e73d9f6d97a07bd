"""A task store that remembers finished tasks: a record at a terminal state never changes again.

The scheduler never moves a task past SUCCESS, FAILURE or CANCELLED and the results writer applies only
higher seqs, so once a read shows a terminal record with its write-once facts (config), every later read
would return the same. Paging through a large result (200 pages), streaming a finished task again and
again, or reading its report then costs no database round trip per request: a heavy tenant's requests
no longer queue in front of other users' queries at the database (issue 12).
"""

from __future__ import annotations

from collections import OrderedDict

from backtest_core.contracts import TERMINAL_STATES

from backtest_gateway.ports import (
    IdempotencyClaim,
    MetricQuery,
    RankedPage,
    TaskFilter,
    TaskPage,
    TaskRecord,
    TaskStore,
)

FINISHED_RECORDS_MAX = 10_000  # records without their results: a few KB each


class FinishedRecords:
    """Wraps a TaskStore; `get_without_result` and `stored_seq` answer finished tasks from memory (LRU)."""

    def __init__(self, store: TaskStore, max_entries: int = FINISHED_RECORDS_MAX) -> None:
        self._store = store
        self._max_entries = max_entries
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()

    @property
    def inner(self) -> TaskStore:
        """The wrapped store."""
        return self._store

    def _remembered(self, task_id: str) -> TaskRecord | None:
        record = self._records.get(task_id)
        if record is not None:
            self._records.move_to_end(task_id)
        return record

    def _remember(self, record: TaskRecord) -> None:
        if record.state not in TERMINAL_STATES or record.config is None or self._max_entries < 1:
            return  # still moving, or its facts (written once, maybe after the state) not seen yet
        self._records[record.task_id] = record
        self._records.move_to_end(record.task_id)
        while len(self._records) > self._max_entries:
            self._records.popitem(last=False)

    async def get_without_result(self, task_id: str) -> TaskRecord | None:
        """The record without its result, from memory once it is finished."""
        record = self._remembered(task_id)
        if record is None:
            record = await self._store.get_without_result(task_id)
            if record is not None:
                self._remember(record)
        return record

    async def stored_seq(self, task_id: str) -> int | None:
        """The stored seq, from memory once the task is finished."""
        record = self._remembered(task_id)
        return record.seq if record is not None else await self._store.stored_seq(task_id)

    async def get(self, task_id: str) -> TaskRecord | None:
        """The whole record, result included (never kept here: results are large)."""
        record = await self._store.get(task_id)
        if record is not None:
            self._remember(record.model_copy(update={"result": None}))
        return record

    async def insert_pending(self, record: TaskRecord) -> None:
        """As the wrapped store."""
        await self._store.insert_pending(record)

    async def delete_pending(self, task_id: str) -> None:
        """As the wrapped store."""
        await self._store.delete_pending(task_id)

    async def page(self, user_id: str | None, where: TaskFilter, limit: int, offset: int) -> TaskPage:
        """As the wrapped store."""
        return await self._store.page(user_id, where, limit, offset)

    async def ranked(self, user_id: str | None, query: MetricQuery) -> RankedPage:
        """As the wrapped store."""
        return await self._store.ranked(user_id, query)

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """As the wrapped store."""
        return await self._store.claim_idempotency_key(user_id, key, task_id, config_hash)

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """As the wrapped store."""
        await self._store.release_idempotency_key(user_id, key, task_id)
