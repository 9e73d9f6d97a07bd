"""What the results writer needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from backtest_core.contracts import BacktestEvent

from backtest_results.documents import WriteOutcome


class BacktestWriter(Protocol):
    """Stores each task's newest state; applying the same or an older event again changes nothing."""

    async def apply(self, event: BacktestEvent) -> WriteOutcome:
        """Store `event` if it is newer than the stored state (durably, before returning)."""
        ...
