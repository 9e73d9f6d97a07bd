"""What the walk-forward resource needs: its store (MongoDB `walkforwards`) and the command publisher."""

from __future__ import annotations

from typing import Protocol

from backtest_core.contracts import CancelWalkForward, SubmitWalkForward
from backtest_research.walkforward_records import WalkForwardRecord


class WalkForwardStore(Protocol):
    """The gateway's insert and reads of walk-forwards (the sweeper owns every later change)."""

    async def insert(self, record: WalkForwardRecord) -> None:
        """Store a new walk-forward, PENDING."""
        ...

    async def delete_pending(self, walkforward_id: str) -> None:
        """Remove a walk-forward still PENDING (its command could not be queued)."""
        ...

    async def get(self, walkforward_id: str) -> WalkForwardRecord | None:
        """The walk-forward, or None."""
        ...

    async def page(self, user_id: str | None, limit: int, offset: int) -> tuple[list[WalkForwardRecord], int]:
        """A page of walk-forwards (of one user, or everyone's for None), newest first, and the total."""
        ...

    async def open_count(self, user_id: str) -> int:
        """How many of the user's walk-forwards have not finished."""
        ...


class WalkForwardBus(Protocol):
    """Publishes walk-forward commands to SWEEP_COMMANDS."""

    async def submit(self, command: SubmitWalkForward) -> None: ...

    async def cancel(self, command: CancelWalkForward) -> None: ...
