"""InMemoryTaskStore: the gateway's TaskStore port over a dict; `put` plays the results writer."""

from __future__ import annotations

from backtest_core.contracts import TaskState
from backtest_gateway.ports import (
    IdempotencyClaim,
    MetricQuery,
    RankedPage,
    RankedTask,
    TaskFilter,
    TaskPage,
    TaskRecord,
)


class InMemoryTaskStore:
    """A dict of TaskRecords; `put` lets a test play the results writer."""

    def __init__(self) -> None:
        self.records: dict[str, TaskRecord] = {}
        self.keys: dict[tuple[str, str], IdempotencyClaim] = {}

    def put(self, record: TaskRecord) -> None:
        """Store or replace a record (as the results writer would)."""
        self.records[record.task_id] = record

    async def insert_pending(self, record: TaskRecord) -> None:
        """Store a new submission; a duplicate task id is an error."""
        if record.task_id in self.records:
            raise KeyError(f"task_id {record.task_id} already stored")
        self.records[record.task_id] = record

    async def delete_pending(self, task_id: str) -> None:
        """Remove the submission if it is still PENDING at seq 0."""
        record = self.records.get(task_id)
        if record is not None and record.seq == 0 and record.state is TaskState.PENDING:
            del self.records[task_id]

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the record or None."""
        return self.records.get(task_id)

    async def get_without_result(self, task_id: str) -> TaskRecord | None:
        """Return the record without its result, or None."""
        record = self.records.get(task_id)
        return None if record is None else record.model_copy(update={"result": None})

    async def stored_seq(self, task_id: str) -> int | None:
        """Return the record's seq or None."""
        record = self.records.get(task_id)
        return None if record is None else record.seq

    async def page(self, user_id: str | None, where: TaskFilter, limit: int, offset: int) -> TaskPage:
        """Return matching records, newest first (by created_at, then task id)."""
        matches = [
            r for r in self.records.values() if (user_id is None or r.user_id == user_id) and where.matches(r)
        ]
        matches.sort(
            key=lambda r: (r.created_at.timestamp() if r.created_at else 0.0, r.task_id), reverse=True
        )
        return TaskPage(items=matches[offset : offset + limit], total=len(matches))

    async def ranked(self, user_id: str | None, query: MetricQuery) -> RankedPage:
        """Rank SUCCESS records by `result["metrics"][metric]` (None excluded), ties by task id."""
        rows = []
        for r in self.records.values():
            if r.state is not TaskState.SUCCESS or r.result is None or (user_id and r.user_id != user_id):
                continue
            value = r.result["metrics"].get(query.metric)
            if value is None:
                continue
            if (query.min_value is not None and value < query.min_value) or (
                query.max_value is not None and value > query.max_value
            ):
                continue
            rows.append((value, r))
        rows.sort(key=lambda row: row[1].task_id)
        rows.sort(key=lambda row: row[0], reverse=query.descending)
        items = [
            RankedTask(
                task_id=r.task_id,
                user_id=r.user_id,
                config=r.config,
                strategy_ref=r.strategy_ref,
                metrics=r.result["metrics"] if r.result else {},
                created_at=r.created_at,
            )
            for _, r in rows[query.offset : query.offset + query.limit]
        ]
        return RankedPage(items=items, total=len(rows))

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """Bind the key unless bound; return the binding."""
        return self.keys.setdefault(
            (user_id, key), IdempotencyClaim(task_id=task_id, config_hash=config_hash)
        )

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """Unbind the key if it points at task_id."""
        claim = self.keys.get((user_id, key))
        if claim is not None and claim.task_id == task_id:
            del self.keys[(user_id, key)]
