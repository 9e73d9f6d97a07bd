"""AdmissionStore on the JetStream key-value bucket ADMISSION_BUCKET (one JSON entry per slot pool)."""

from __future__ import annotations

from backtest_core.contracts import ADMISSION_BUCKET
from faststream.nats import NatsBroker
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from backtest_scheduler.admission import AdmissionState
from backtest_scheduler.errors import SchedulerError, TaskConflict

RUNNER_SLOTS_KEY = "runner_slots"  # the pool of every runner's slots (backtests; sweep chunks later)


class NatsKvAdmissionStore:
    """The admission state in one KV entry, written with compare-and-set on its revision."""

    def __init__(
        self,
        broker: NatsBroker,
        bucket: str = ADMISSION_BUCKET,
        key: str = RUNNER_SLOTS_KEY,
        replicas: int = 1,
    ) -> None:
        self._broker = broker
        self._replicas = replicas
        self._bucket = bucket
        self._key = key
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket if missing (idempotent); call once the broker is connected."""
        self._kv = await self._broker.key_value(self._bucket, history=1, replicas=self._replicas)

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise SchedulerError(f"NatsKvAdmissionStore({self._bucket!r}) used before open()")
        return self._kv

    async def load(self) -> tuple[AdmissionState, int | None]:
        try:
            entry = await self.kv.get(self._key)
        except KeyNotFoundError:  # also raised for a deleted entry
            return AdmissionState(), None
        if entry.value is None or entry.revision is None:
            return AdmissionState(), None
        return AdmissionState.model_validate_json(entry.value), entry.revision

    async def save(self, state: AdmissionState, revision: int | None) -> None:
        value = state.model_dump_json().encode()
        try:
            if revision is None:
                await self.kv.create(self._key, value)
            else:
                await self.kv.update(self._key, value, last=revision)
        except KeyWrongLastSequenceError as error:
            expected = "not exist yet" if revision is None else f"be at revision {revision}"
            raise TaskConflict(
                f"admission state {self._key} must {expected}, another scheduler changed it"
            ) from error
