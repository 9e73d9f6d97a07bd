"""TaskStore on the JetStream key-value bucket TASKS_BUCKET (one key per task id, JSON values)."""

from __future__ import annotations

from backtest_core.contracts import TASKS_BUCKET, TaskState
from backtest_core.model.trade_log import PACKED
from faststream.nats import NatsBroker
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from backtest_scheduler.errors import SchedulerError, TaskConflict
from backtest_scheduler.task import StoredTask, TaskRecord


class NatsKvTaskStore:
    """Task records in a JetStream KV bucket, updated with compare-and-set on the entry revision."""

    def __init__(
        self, broker: NatsBroker, bucket: str = TASKS_BUCKET, ttl_s: float | None = None, replicas: int = 1
    ) -> None:
        self._broker = broker
        self._replicas = replicas
        self._bucket = bucket
        self._ttl_s = ttl_s
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket if missing (idempotent); call once the broker is connected."""
        self._kv = await self._broker.key_value(
            self._bucket, history=1, ttl=self._ttl_s, replicas=self._replicas
        )

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

    async def create(self, record: TaskRecord) -> int:
        try:
            return await self.kv.create(record.task_id, _encode(record))
        except KeyWrongLastSequenceError as error:
            raise TaskConflict(f"task {record.task_id} must not exist yet, but it does") from error

    async def update(self, record: TaskRecord, revision: int) -> int:
        try:
            return await self.kv.update(record.task_id, _encode(record), last=revision)
        except KeyWrongLastSequenceError as error:
            raise TaskConflict(
                f"task {record.task_id} must still be at revision {revision}, another writer changed it"
            ) from error

    async def _all(self) -> list[TaskRecord]:
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return []
        records = []
        for key in keys:
            stored = await self.get(key)
            if stored is not None:
                records.append(stored.record)
        return records

    async def waiting_for_requeue(self) -> list[TaskRecord]:
        return [r for r in await self._all() if r.state is TaskState.RETRY and r.requeue_at is not None]

    async def owing(self) -> list[str]:
        return [r.task_id for r in await self._all() if r.outbox is not None]


def _encode(record: TaskRecord) -> bytes:
    """Return the record as JSON; a result in its outbox keeps its trades packed (trade_log.PACKED)."""
    encoded: bytes = record.model_dump_json(context=PACKED).encode()
    return encoded
