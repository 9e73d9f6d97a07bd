"""TaskStore on the JetStream key-value bucket TASKS_BUCKET (one key per task id, JSON values)."""

from __future__ import annotations

from backtest_core.contracts import TASKS_BUCKET, TaskState
from faststream.nats import NatsBroker
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from backtest_scheduler.errors import SchedulerError, TaskConflict
from backtest_scheduler.task import StoredTask, TaskRecord


class NatsKvTaskStore:
    """Task records in a JetStream KV bucket, updated with compare-and-set on the entry revision."""

    def __init__(self, broker: NatsBroker, bucket: str = TASKS_BUCKET, ttl_s: float | None = None) -> None:
        self._broker = broker
        self._bucket = bucket
        self._ttl_s = ttl_s
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket if missing (idempotent); call once the broker is connected."""
        self._kv = await self._broker.key_value(self._bucket, history=1, ttl=self._ttl_s)

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise SchedulerError(f"NatsKvTaskStore({self._bucket!r}) used before open()")
        return self._kv

    async def get(self, task_id: str) -> StoredTask | None:
        try:
            entry = await self.kv.get(task_id)
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return StoredTask(TaskRecord.model_validate_json(entry.value), entry.revision)

    async def create(self, record: TaskRecord) -> None:
        try:
            await self.kv.create(record.task_id, record.model_dump_json().encode())
        except KeyWrongLastSequenceError as error:
            raise TaskConflict(f"task {record.task_id} must not exist yet, but it does") from error

    async def update(self, record: TaskRecord, revision: int) -> None:
        try:
            await self.kv.update(record.task_id, record.model_dump_json().encode(), last=revision)
        except KeyWrongLastSequenceError as error:
            raise TaskConflict(
                f"task {record.task_id} must still be at revision {revision}, another writer changed it"
            ) from error

    async def waiting_for_requeue(self) -> list[TaskRecord]:
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return []
        waiting = []
        for key in keys:
            stored = await self.get(key)
            if stored and stored.record.state is TaskState.RETRY and stored.record.requeue_at is not None:
                waiting.append(stored.record)
        return waiting
