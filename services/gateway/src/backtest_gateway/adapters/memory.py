"""In-memory adapters of the gateway's ports, for tests and local development without servers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import numpy as np
from backtest_core.candles import Candles
from backtest_core.contracts import (
    BacktestEvent,
    CancelBacktest,
    CancelSweep,
    SubmitBacktest,
    SubmitSweep,
    SweepState,
    TaskState,
)
from backtest_marketdata.models import SortField, Symbol, SymbolFilter, SymbolPage
from backtest_research.sweep_records import OPEN_TRIALS, SweepRecord, TrialRecord, TrialStatus

from backtest_gateway.ports import (
    IdempotencyClaim,
    MetricQuery,
    QuotaChange,
    RankedPage,
    RankedTask,
    StrategyPage,
    StrategyRecord,
    SweepOrder,
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


class RecordingCommandBus:
    """Keeps every published command in order; `fail` makes the next publishes raise."""

    def __init__(self) -> None:
        self.published: list[SubmitBacktest | CancelBacktest | SubmitSweep | CancelSweep] = []
        self.fail: Exception | None = None

    async def submit(self, command: SubmitBacktest) -> None:
        """Record the command (or raise `fail`)."""
        if self.fail is not None:
            raise self.fail
        self.published.append(command)

    async def cancel(self, command: CancelBacktest) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def submit_sweep(self, command: SubmitSweep) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def cancel_sweep(self, command: CancelSweep) -> None:
        """Record the command (or raise `fail`)."""
        await self._record(command)

    async def _record(self, command: SubmitBacktest | CancelBacktest | SubmitSweep | CancelSweep) -> None:
        if self.fail is not None:
            raise self.fail
        self.published.append(command)


class InMemoryEventFeed:
    """Per-task event logs; `append` is thread-safe so a test thread can feed a running app."""

    def __init__(self) -> None:
        self._logs: dict[str, list[BacktestEvent]] = defaultdict(list)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def followers(self) -> int:
        """How many `events()` iterators are open."""
        return len(self._waiters)

    def append(self, event: BacktestEvent) -> None:
        """Add an event to its task's log and wake every follower."""
        self._logs[event.task_id].append(event)
        for loop, flag in list(self._waiters):
            loop.call_soon_threadsafe(flag.set)

    async def has_events(self, task_id: str) -> bool:
        """True if the task's log is not empty."""
        return bool(self._logs.get(task_id))

    async def events(self, task_id: str) -> AsyncGenerator[BacktestEvent, None]:
        """Yield the task's log from the start, then wait for more."""
        position = 0
        flag = asyncio.Event()
        waiter = (asyncio.get_running_loop(), flag)
        self._waiters.append(waiter)
        try:
            while True:
                log = self._logs[task_id]
                while position < len(log):
                    yield log[position]
                    position += 1
                flag.clear()
                if position < len(self._logs[task_id]):
                    continue
                await flag.wait()
        finally:
            self._waiters.remove(waiter)


class InMemoryStrategyStore:
    """The latest version of each strategy keyed by (user_id, name), and every version in `history`."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], StrategyRecord] = {}
        self.history: dict[tuple[str, str], dict[int, StrategyRecord]] = defaultdict(dict)

    async def insert(self, record: StrategyRecord) -> bool:
        """Store unless the name is taken for that user (or that version was ever stored)."""
        key = (record.user_id, record.name)
        if key in self.records or record.version in self.history[key]:
            return False
        self.records[key] = record
        self.history[key][record.version] = record
        return True

    async def get(self, user_id: str, name: str) -> StrategyRecord | None:
        """Return the latest version or None."""
        return self.records.get((user_id, name))

    async def get_version(self, user_id: str, name: str, version: int) -> StrategyRecord | None:
        """Return one stored version or None."""
        return self.history.get((user_id, name), {}).get(version)

    async def versions(self, user_id: str, name: str) -> list[StrategyRecord]:
        """Return every stored version, oldest first."""
        stored = self.history.get((user_id, name), {})
        return [stored[v] for v in sorted(stored)]

    async def page(self, user_id: str | None, limit: int, offset: int) -> StrategyPage:
        """Return records sorted by user, then name."""
        matches = sorted(
            (r for r in self.records.values() if user_id is None or r.user_id == user_id),
            key=lambda r: (r.user_id, r.name),
        )
        return StrategyPage(items=matches[offset : offset + limit], total=len(matches))

    async def replace(self, record: StrategyRecord, expected_version: int) -> bool:
        """Add the version if the latest one matches."""
        key = (record.user_id, record.name)
        stored = self.records.get(key)
        if stored is None or stored.version != expected_version or record.version in self.history[key]:
            return False
        self.records[key] = record
        self.history[key][record.version] = record
        return True

    async def delete(self, user_id: str, name: str) -> bool:
        """Delete the latest-version entry (the history stays); False if absent."""
        return self.records.pop((user_id, name), None) is not None

    async def count(self, user_id: str) -> int:
        """Count the user's records."""
        return sum(1 for u, _ in self.records if u == user_id)


class InMemorySweepStore:
    """Sweeps by id and their trials in lists; `put_trial` stands in for the sweeper's writes."""

    def __init__(self) -> None:
        self.records: dict[str, SweepRecord] = {}
        self.trial_rows: dict[str, list[TrialRecord]] = defaultdict(list)

    def put_trial(self, trial: TrialRecord) -> None:
        """Store a trial as the sweeper would."""
        self.trial_rows[trial.sweep_id].append(trial)

    async def insert(self, record: SweepRecord) -> None:
        self.records[record.sweep_id] = record

    async def delete_pending(self, sweep_id: str) -> None:
        if sweep_id in self.records and self.records[sweep_id].state is SweepState.PENDING:
            del self.records[sweep_id]

    async def get(self, sweep_id: str) -> SweepRecord | None:
        return self.records.get(sweep_id)

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[SweepRecord], int]:
        mine = [r for r in self.records.values() if user_id is None or r.user_id == user_id]
        mine.sort(key=lambda r: (-r.created_at.timestamp(), r.sweep_id))
        return mine[offset : offset + limit], len(mine)

    async def open_count(self, user_id: str) -> int:
        open_states = (SweepState.PENDING, SweepState.RUNNING)
        return sum(
            r.user_id == user_id and r.state in open_states and r.walkforward_id is None
            for r in self.records.values()
        )

    async def trials(
        self, sweep_id: str, order: SweepOrder, limit: int, offset: int, state: TrialStatus | None
    ) -> tuple[list[TrialRecord], int]:
        rows = [t for t in self.trial_rows[sweep_id] if state is None or t.state is state]
        if order.by == "id":
            rows.sort(key=lambda t: t.id, reverse=order.descending)
        else:  # None last either way, ties by id
            with_value = [t for t in rows if (t.metrics or {}).get(order.by) is not None]
            with_value.sort(key=lambda t: (t.metrics or {})[order.by], reverse=order.descending)
            rows = with_value + sorted((t for t in rows if t not in with_value), key=lambda t: t.id)
        return rows[offset : offset + limit], len(rows)

    async def ended_since(self, sweep_id: str, since: datetime | None) -> list[TrialRecord]:
        ended = [t for t in self.trial_rows[sweep_id] if t.state not in OPEN_TRIALS]
        return sorted(
            (t for t in ended if since is None or t.updated_at >= since), key=lambda t: (t.updated_at, t.id)
        )


class InMemoryQuotaStore:
    """Quota entries in a dict: one process's view (tests, or a single gateway without NATS)."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}

    async def change(self, key: str, change: QuotaChange) -> Any:
        new_value, result = change(self.entries.get(key))
        if new_value is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = new_value
        return result


class InMemoryMarketData:
    """Symbols and candles held in dicts; filters like MongoSymbolStore's criteria."""

    def __init__(self, symbols: list[Symbol] | None = None, candles: list[Candles] | None = None) -> None:
        self.by_name: dict[str, Symbol] = {s.symbol: s for s in symbols or []}
        self.series: dict[tuple[str, str], Candles] = {(c.symbol, c.interval): c for c in candles or []}

    def symbols(
        self, criteria: SymbolFilter, offset: int, limit: int, sort: SortField, descending: bool
    ) -> SymbolPage:
        """Return one page of matching symbols sorted by `sort` (None last ascending), ties by name."""
        matches = [s for s in self.by_name.values() if _matches(s, criteria)]
        matches.sort(key=lambda s: s.symbol)
        present = [s for s in matches if getattr(s, sort) is not None]
        absent = [s for s in matches if getattr(s, sort) is None]
        present.sort(key=lambda s: getattr(s, sort), reverse=descending)
        ordered = present + absent
        return SymbolPage(
            total=len(ordered), offset=offset, limit=limit, items=ordered[offset : offset + limit]
        )

    def symbol(self, symbol: str) -> Symbol | None:
        """Return one symbol, or None."""
        return self.by_name.get(symbol)

    def candles(self, symbol: str, interval: str, start_ns: int | None, end_ns: int | None) -> Candles:
        """Return the held bars in [start_ns, end_ns), empty if none."""
        held = self.series.get((symbol, interval))
        if held is None:
            empty_f, empty_t = np.zeros(0), np.zeros(0, np.int64)
            return Candles(symbol, interval, empty_t, empty_f, empty_f, empty_f, empty_f, empty_f)
        return held.between(start_ns, end_ns)


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _matches(s: Symbol, c: SymbolFilter) -> bool:
    if (c.type is not None and s.type != c.type) or (c.is_active is not None and s.is_active != c.is_active):
        return False
    if not _within(s.volume_24h, c.min_volume_24h, c.max_volume_24h):
        return False
    if not _within(s.market_cap, c.min_market_cap, c.max_market_cap):
        return False
    if c.has_interval is None:
        return True
    cover = s.coverage.get(c.has_interval)
    if cover is None or cover.count <= 0:
        return False
    if c.covers_from is not None and (cover.first is None or cover.first > c.covers_from):
        return False
    if c.covers_to is not None and (cover.last is None or cover.last < c.covers_to):
        return False
    return c.max_gaps is None or cover.gaps <= c.max_gaps
