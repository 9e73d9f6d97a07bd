"""How a backtest event changes the task's document in collection `backtests`, in memory. Pure; no I/O.

The fields an event writes are the shared contract's (`backtest_core.contracts.records`: `state_fields`
only when the event's `seq` is higher than the stored one, `fact_fields` whatever the order of arrival);
`merge` is the rule MongoBacktestWriter applies with one conditional upsert on `seq`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, cast

from backtest_core.contracts import BacktestEvent
from backtest_core.contracts.records import BacktestDocument, fact_fields, state_fields


class WriteOutcome(StrEnum):
    """What storing an event did."""

    APPLIED = "applied"  # the event was newer than the stored state
    STALE = "stale"  # the stored state is as new or newer (duplicate or out-of-order redelivery)


def new_document(task_id: str) -> BacktestDocument:
    """Return the document an event creates when the task has none yet (its submission was not stored)."""
    return {"_id": task_id, "seq": 0}


def merge(stored: Mapping[str, Any] | None, event: BacktestEvent) -> tuple[BacktestDocument, WriteOutcome]:
    """Return the document after `event` and whether its state fields applied (the rule, in memory)."""
    document = cast(BacktestDocument, dict(stored)) if stored is not None else new_document(event.task_id)
    document.setdefault("created_at", event.occurred_at)
    outcome = WriteOutcome.STALE
    if document["seq"] < event.seq:
        document.update(state_fields(event))
        outcome = WriteOutcome.APPLIED
    document.update(fact_fields(event))
    return document, outcome
