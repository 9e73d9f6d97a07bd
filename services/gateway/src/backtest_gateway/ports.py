"""What the gateway needs from the outside world, as Protocols; adapters live in `adapters/`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from backtest_core.contracts import (
    BacktestEvent,
    BacktestEventBase,
    CancelBacktest,
    CancelSweep,
    Failure,
    SubmitBacktest,
    SubmitSweep,
    TaskState,
)
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, Params
from backtest_marketdata.models import SortField, Symbol, SymbolFilter, SymbolPage
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class StrategyRef(BaseModel):
    """Which uploaded strategy (owner, name, version) a submission's source came from."""

    model_config = ConfigDict(frozen=True)

    owner: str
    name: str
    version: int = Field(ge=1)


class TaskRecord(BaseModel):
    """One backtest as stored in MongoDB `backtests` (the results writer owns every field after seq 0).

    `progress` is the last reported fraction in [0, 1]; `result` is the raw stored result document.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str
    user_id: str
    state: TaskState
    seq: int = 0
    config: BacktestConfig | None = None
    progress: float | None = None
    stage: str | None = None
    attempt: int | None = None
    result: dict[str, Any] | None = None
    failure: Failure | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    idempotency_key: str | None = None
    strategy_ref: StrategyRef | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TaskFilter(BaseModel):
    """Which of a user's tasks a list shows: by state, by strategy name (a built-in's, or an uploaded
    strategy's), by a symbol among its symbols; None: any."""

    model_config = ConfigDict(frozen=True)

    state: TaskState | None = None
    strategy: str | None = None
    symbol: str | None = None

    def matches(self, record: TaskRecord) -> bool:
        """Whether `record` passes (the in-memory store's test; MongoTaskStore asks the same in a query)."""
        return (
            (self.state is None or record.state is self.state)
            and (self.strategy is None or self.strategy in strategy_names(record))
            and (self.symbol is None or (record.config is not None and self.symbol in record.config.symbols))
        )


def strategy_names(record: TaskRecord) -> set[str]:
    """The names a task's strategy goes by: the built-in's, the uploaded source's and its reference's."""
    spec = record.config.strategy if record.config is not None else None
    names = {spec} if isinstance(spec, str) else {getattr(spec, "builtin", None), getattr(spec, "name", None)}
    if record.strategy_ref is not None:
        names.add(record.strategy_ref.name)
    return {name for name in names if name}


class TaskPage(BaseModel):
    """One page of a user's tasks, newest first; `total` counts every match."""

    model_config = ConfigDict(frozen=True)

    items: list[TaskRecord]
    total: int = Field(ge=0)


class MetricQuery(BaseModel):
    """Rank finished backtests by one metric of `backtest_core.model.results.Metrics`, optionally bounded."""

    model_config = ConfigDict(frozen=True)

    metric: str
    descending: bool = True
    min_value: float | None = None
    max_value: float | None = None
    limit: int = Field(default=50, ge=1)
    offset: int = Field(default=0, ge=0)


class RankedTask(BaseModel):
    """A finished backtest with its headline metrics (no equity curve, no trades)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str
    user_id: str
    config: BacktestConfig | None = None
    strategy_ref: StrategyRef | None = None
    metrics: dict[str, Any]
    created_at: datetime | None = None


class RankedPage(BaseModel):
    """One page of ranked backtests; `total` counts every match."""

    model_config = ConfigDict(frozen=True)

    items: list[RankedTask]
    total: int = Field(ge=0)


class IdempotencyClaim(BaseModel):
    """The task an Idempotency-Key is bound to, with the hash of the config it was submitted with."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    config_hash: str


class TaskStore(Protocol):
    """Read and record backtests (MongoDB `backtests`)."""

    async def insert_pending(self, record: TaskRecord) -> None:
        """Record a submission (state PENDING, seq 0) durably before its command is published."""
        ...

    async def delete_pending(self, task_id: str) -> None:
        """Remove a PENDING submission whose command could not be published."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the task, reading a secondary first and the primary when the secondary misses it."""
        ...

    async def get_without_result(self, task_id: str) -> TaskRecord | None:
        """Return the task like `get`, with `result` None (cheap: a result can be ~15 MB)."""
        ...

    async def stored_seq(self, task_id: str) -> int | None:
        """Return the task's stored seq as `get` would read it (None if missing), without its result."""
        ...

    async def page(self, user_id: str | None, where: TaskFilter, limit: int, offset: int) -> TaskPage:
        """Return tasks of `user_id` (all users when None) that pass `where`, newest first."""
        ...

    async def ranked(self, user_id: str | None, query: MetricQuery) -> RankedPage:
        """Return SUCCESS tasks of `user_id` (all when None) with a non-null `query.metric`, ranked by it."""
        ...

    async def claim_idempotency_key(
        self, user_id: str, key: str, task_id: str, config_hash: str
    ) -> IdempotencyClaim:
        """Bind (user_id, key) to (task_id, config_hash) unless already bound; return the binding."""
        ...

    async def release_idempotency_key(self, user_id: str, key: str, task_id: str) -> None:
        """Unbind (user_id, key) if it is bound to task_id."""
        ...


class CommandBus(Protocol):
    """Publish commands durably (JetStream, waiting for the ack)."""

    async def submit(self, command: SubmitBacktest) -> None:
        """Publish a SubmitBacktest; return once the stream stored it."""
        ...

    async def cancel(self, command: CancelBacktest) -> None:
        """Publish a CancelBacktest; return once the stream stored it."""
        ...

    async def submit_sweep(self, command: SubmitSweep) -> None:
        """Publish a SubmitSweep; return once the stream stored it."""
        ...

    async def cancel_sweep(self, command: CancelSweep) -> None:
        """Publish a CancelSweep; return once the stream stored it."""
        ...


class SucceededHeader(BacktestEventBase):
    """A SUCCESS event without its result: read it from the task store, or from `whole_event()`.

    A feed yields this instead of a `BacktestSucceeded` whose result is large, so a stream never receives
    or decodes a result per follower.
    """

    model_config = ConfigDict(extra="ignore")

    state: Literal[TaskState.SUCCESS] = TaskState.SUCCESS
    cached_from: str | None = None
    _whole: Callable[[], Awaitable[bytes]] | None = PrivateAttr(default=None)

    def reading_whole_event_from(self, whole: Callable[[], Awaitable[bytes]]) -> SucceededHeader:
        """Return this header with `whole()` as the source of the whole event's JSON."""
        self._whole = whole
        return self

    async def whole_event(self) -> bytes:
        """Return the whole event's JSON (the result included) from where the feed read the header."""
        if self._whole is None:
            raise LookupError(f"no source of the whole SUCCESS event of task {self.task_id}")
        return await self._whole()


FeedEvent = BacktestEvent | SucceededHeader


class EventFeed(Protocol):
    """Replay a task's events from its first one, then follow live ones."""

    def events(self, task_id: str) -> AsyncGenerator[FeedEvent, None]:
        """Yield every event of `task_id` in seq order, from the start, forever (caller stops)."""
        ...

    async def has_events(self, task_id: str) -> bool:
        """True if the stream still holds events of `task_id` (they expire after the stream's max age)."""
        ...


class StrategyRecord(BaseModel):
    """One version of a user's uploaded strategy: source (a package: entry + `files`), class, params.

    `version` starts at 1 and grows by one on every update; a stored version never changes.
    `created_at` is when the strategy was first uploaded, `updated_at` when this version was.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: str
    name: str
    source: str
    files: dict[str, str] = Field(default_factory=dict)
    class_name: str
    params: Params = Field(default_factory=dict)
    description: str = ""
    version: int = Field(default=1, ge=1)
    created_at: datetime
    updated_at: datetime


class StrategyPage(BaseModel):
    """One page of a user's strategies, by name; `total` counts every match."""

    model_config = ConfigDict(frozen=True)

    items: list[StrategyRecord]
    total: int = Field(ge=0)


class StrategyStore(Protocol):
    """Users' uploaded strategies, keyed by (user_id, name): the latest version of each strategy
    (MongoDB `strategies`) and every version ever stored (`strategy_versions`, never changed)."""

    async def insert(self, record: StrategyRecord) -> bool:
        """Store a new strategy at `record.version`; False if the user already has one of that name."""
        ...

    async def get(self, user_id: str, name: str) -> StrategyRecord | None:
        """Return the latest version of the user's strategy of that name, or None (also once deleted)."""
        ...

    async def get_version(self, user_id: str, name: str, version: int) -> StrategyRecord | None:
        """Return one stored version (kept after a delete), or None."""
        ...

    async def versions(self, user_id: str, name: str) -> list[StrategyRecord]:
        """Return every stored version of the strategy, oldest first (kept after a delete)."""
        ...

    async def page(self, user_id: str | None, limit: int, offset: int) -> StrategyPage:
        """Return strategies of `user_id` (all users when None) sorted by user, then name."""
        ...

    async def replace(self, record: StrategyRecord, expected_version: int) -> bool:
        """Add `record` as the latest version if the latest is still `expected_version`; False otherwise."""
        ...

    async def delete(self, user_id: str, name: str) -> bool:
        """Delete the user's strategy (no new runs) but keep its versions; False if there was none."""
        ...

    async def count(self, user_id: str) -> int:
        """How many strategies the user has."""
        ...


class MarketData(Protocol):
    """Symbols and candles, read-only (secondary preferred); blocking calls, run in a worker thread."""

    def symbols(
        self, criteria: SymbolFilter, offset: int, limit: int, sort: SortField, descending: bool
    ) -> SymbolPage:
        """Return one page of the symbols matching `criteria`."""
        ...

    def symbol(self, symbol: str) -> Symbol | None:
        """Return one symbol, or None."""
        ...

    def candles(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the stored bars with start_ns <= open_time < end_ns (UTC ns; None = unbounded)."""
        ...


class SweepOrder(BaseModel):
    """How a trials page is sorted: by `id` or a metric, ascending or descending (None last)."""

    by: str = "id"
    descending: bool = False


class SweepStore(Protocol):
    """The sweeps the gateway creates and reads (the sweeper owns every change after the insert)."""

    async def insert(self, record: SweepRecord) -> None:
        """Store a new PENDING sweep."""
        ...

    async def delete_pending(self, sweep_id: str) -> None:
        """Remove a sweep whose command could not be queued."""
        ...

    async def get(self, sweep_id: str) -> SweepRecord | None:
        """The sweep, or None."""
        ...

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[SweepRecord], int]:
        """The user's sweeps (None: everyone's) newest first, and how many there are."""
        ...

    async def open_count(self, user_id: str) -> int:
        """How many of the user's sweeps are PENDING or RUNNING."""
        ...

    async def trials(
        self, sweep_id: str, order: SweepOrder, limit: int, offset: int, state: TrialStatus | None
    ) -> tuple[list[TrialRecord], int]:
        """A page of the sweep's trials (without their returns) and how many match."""
        ...

    async def ended_since(self, sweep_id: str, since: datetime | None) -> list[TrialRecord]:
        """The sweep's ended trials, cancelled ones included (without their returns), updated at or
        after `since` (None: all), oldest change first."""
        ...


QuotaChange = Callable[[bytes | None], tuple[bytes | None, Any]]
"""Maps a quota entry's current value (None: absent) to its new value (None: remove it) and a result."""


class QuotaStore(Protocol):
    """Small per-user quota entries (rate buckets, stream leases) shared by every gateway process."""

    async def change(self, key: str, change: QuotaChange) -> Any:
        """Apply `change` to the entry atomically (compare-and-set, retried on a concurrent write); return
        its result. Raises QuotasUnavailable when the shared store cannot be reached."""
        ...
