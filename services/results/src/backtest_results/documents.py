"""How a backtest event changes the task's document in collection `backtests`. Pure; no I/O.

One document per task, `_id` = task id. Fields that change with the state (state, seq, progress,
attempt, result, failure, timestamps) are written only by an event with a higher `seq` than the stored
one, so a stale or duplicate redelivery never overwrites a newer state. The facts of BacktestAccepted
(config, cache_key, created_at) never change and are written whatever the order of arrival.

Nested models are stored as JSON data (datetimes as ISO-8601 strings, field aliases as in the API) but
for the result's trades, which are one packed string (`backtest_core.trade_pack`: ~60 bytes a trade
instead of ~300, so a document holds ~250,000 trades): validate `result` with `BacktestResult` to read
them. The top-level timestamps are BSON dates (UTC). Read with `tz_aware=True`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestEvent,
    BacktestFailed,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
)
from backtest_core.trade_log import PACKED

BACKTESTS_COLLECTION = "backtests"

Document = dict[str, Any]


class WriteOutcome(StrEnum):
    """What storing an event did."""

    APPLIED = "applied"  # the event was newer than the stored state
    STALE = "stale"  # the stored state is as new or newer (duplicate or out-of-order redelivery)


def state_fields(event: BacktestEvent) -> Document:
    """Return the fields an event sets when it is newer than the stored state."""
    fields: Document = {
        "task_id": event.task_id,
        "user_id": event.user_id,
        "state": event.state.value,
        "seq": event.seq,
        "updated_at": event.occurred_at,
        "last_event_id": event.message_id,
    }
    match event:
        case BacktestAccepted():
            fields["progress"] = {"fraction": 0.0, "stage": "queued"}
        case BacktestStarted():
            fields |= {"attempt": event.attempt, "started_at": event.occurred_at}
            fields["progress"] = {"fraction": 0.0, "stage": "started"}
        case BacktestProgressed():
            fields["progress"] = {"fraction": event.fraction, "stage": event.stage}
        case BacktestRetrying():
            fields["attempt"] = event.attempt
            fields["retry"] = {
                "attempt": event.attempt,
                "delay_s": event.delay_s,
                "failure": event.failure.model_dump(mode="json"),
            }
        case BacktestSucceeded():
            fields |= {
                "result": event.result.model_dump(mode="json", by_alias=True, context=PACKED),
                "cached_from": event.cached_from,
                "failure": None,
                "finished_at": event.occurred_at,
            }
            fields["progress"] = {"fraction": 1.0, "stage": "done"}
        case BacktestFailed():
            fields |= {"failure": event.failure.model_dump(mode="json"), "finished_at": event.occurred_at}
        case BacktestCancelled():
            fields["finished_at"] = event.occurred_at
    return fields


def fact_fields(event: BacktestEvent) -> Document:
    """Return the write-once fields of an event (only BacktestAccepted has any)."""
    if not isinstance(event, BacktestAccepted):
        return {}
    return {
        "user_id": event.user_id,
        "config": event.config.model_dump(mode="json", by_alias=True),
        "cache_key": event.cache_key,
        "created_at": event.occurred_at,
    }


def merge(stored: Mapping[str, Any] | None, event: BacktestEvent) -> tuple[Document, WriteOutcome]:
    """Return the document after `event` and whether its state fields applied (the rule, in memory)."""
    document: Document = dict(stored) if stored is not None else {"_id": event.task_id, "seq": 0}
    document.setdefault("created_at", event.occurred_at)
    outcome = WriteOutcome.STALE
    if document["seq"] < event.seq:
        document |= state_fields(event)
        outcome = WriteOutcome.APPLIED
    document |= fact_fields(event)
    return document, outcome
