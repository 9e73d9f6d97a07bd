"""InMemorySweepStore: the gateway's SweepStore port over dicts; `put_trial` plays the sweeper."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from backtest_core.contracts import SweepState
from backtest_gateway.ports import SweepOrder
from backtest_research.sweep_records import OPEN_TRIALS, SweepRecord, TrialRecord, TrialStatus


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
