"""Builders of one task's events, and an in-memory BacktestWriter that follows documents.merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backtest_core.contracts import (
    BacktestAccepted,
    BacktestEvent,
    BacktestProgressed,
    BacktestStarted,
    BacktestSucceeded,
    new_id,
)
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import EquityPoint
from backtest_results.documents import WriteOutcome, merge
from backtest_testinfra import make_backtest_result

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make_config() -> BacktestConfig:
    return BacktestConfig.model_validate(
        {"strategy": {"builtin": "sma_cross"}, "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSDT"]}
    )


def lifecycle(task_id: str | None = None) -> list[BacktestEvent]:
    """Return a task's events seq 1..5: accepted, started, progress 0.4, progress 0.9, succeeded."""
    task_id = task_id or new_id()
    config = make_config()
    common: dict[str, Any] = {"task_id": task_id, "user_id": "alice"}
    at = [T0 + timedelta(seconds=s) for s in range(5)]
    curve = [
        EquityPoint(time=T0, equity=1_000_000.0),
        EquityPoint(time=T0 + timedelta(days=364), equity=1_085_000.0),
    ]
    result = make_backtest_result(
        config,
        start_equity=1_000_000.0,
        final_equity=1_085_000.0,
        trade_count=100,
        bars=365,
        equity_curve=curve,
        rejected_proposals=3,
    )
    return [
        BacktestAccepted(**common, seq=1, occurred_at=at[0], config=config, cache_key="k" * 64),
        BacktestStarted(**common, seq=2, occurred_at=at[1], attempt=1),
        BacktestProgressed(**common, seq=3, occurred_at=at[2], fraction=0.4, stage="proposals"),
        BacktestProgressed(**common, seq=4, occurred_at=at[3], fraction=0.9, stage="portfolio"),
        BacktestSucceeded(**common, seq=5, occurred_at=at[4], result=result),
    ]


class InMemoryBacktestWriter:
    """BacktestWriter over a dict, applying documents.merge."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.outcomes: list[WriteOutcome] = []

    async def apply(self, event: BacktestEvent) -> WriteOutcome:
        document, outcome = merge(self.documents.get(event.task_id), event)
        self.documents[event.task_id] = document
        self.outcomes.append(outcome)
        return outcome
