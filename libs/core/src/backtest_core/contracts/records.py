"""The `backtests` MongoDB document: one per backtest, `_id` = its task id, the same shape for every service.

Who writes and who reads it:
- the gateway inserts the submission (`submitted_document`: PENDING, seq 0) before its command goes out,
  deletes it if the command cannot be published, and reads it for status, results, lists and rankings;
- the results writer owns every change after seq 0: the fields of a state (`state_fields`) are written
  only by an event with a higher `seq` than the stored one, so a stale or duplicate redelivery never
  overwrites a newer state; the facts of BacktestAccepted (`fact_fields`: config, cache_key) never change
  and are written whatever the order of arrival;
- the scheduler reads a SUCCESS document with the same cache key (`cached_success_filter`);
- the sweeper reads a user's other SUCCESS documents of one setup (`same_setup_filter`) for their Sharpes.
The runner neither reads nor writes it: a result reaches it through the scheduler's events.

Nested models are stored as JSON data (datetimes as ISO-8601 strings, field aliases as in the API) but
for the result's trades, which are one packed string (`backtest_core.model.trade_pack`: ~60 bytes a trade
instead of ~300, so a document holds ~250,000 trades): `read_result` validates them back. The top-level
timestamps are BSON dates (UTC): read with `tz_aware=True`. The document is a TypedDict (a plain dict at
run time: the results writer builds one set of fields per event at no cost beyond the dict).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from backtest_core.contracts.messages import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestEvent,
    BacktestFailed,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
    TaskState,
)
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult
from backtest_core.model.trade_log import PACKED

BACKTESTS_COLLECTION = "backtests"


class ProgressFields(TypedDict):
    """How far the run is: `fraction` in [0, 1] and the stage it is in (e.g. "queued", "replay", "done")."""

    fraction: float
    stage: str


class RetryFields(TypedDict):
    """The last infrastructure fault: the attempt it ended, the back-off in seconds, the failure's JSON."""

    attempt: int
    delay_s: float
    failure: dict[str, Any]


class BacktestDocument(TypedDict, total=False):
    """A `backtests` document; every key is optional (a projection or a `$set` holds only some)."""

    _id: str  # the task id
    task_id: str
    user_id: str
    state: str  # a TaskState value
    seq: int  # 0 for the gateway's submission, then the last applied event's seq
    config: dict[str, Any]  # BacktestConfig as JSON, by alias
    cache_key: str
    idempotency_key: str
    strategy_ref: dict[str, Any]  # the uploaded strategy run: {"owner", "name", "version"}
    progress: ProgressFields
    attempt: int
    retry: RetryFields
    result: dict[str, Any] | None  # BacktestResult as JSON, trades packed: read with read_result
    cached_from: str | None
    failure: dict[str, Any] | None  # contracts.Failure as JSON
    last_event_id: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One index of the collection: its name and its keys, each 1 (ascending) or -1 (descending)."""

    name: str
    keys: tuple[tuple[str, int], ...]


CACHE_KEY_INDEX = IndexSpec("cache_key", (("cache_key", 1),))  # the scheduler's result cache
USER_CREATED_INDEX = IndexSpec("user_created", (("user_id", 1), ("created_at", -1)))  # lists, newest first
BACKTEST_INDEXES = (CACHE_KEY_INDEX, USER_CREATED_INDEX)

# A listing leaves the result out; the scheduler's cache hit reads only what it copies.
WITHOUT_RESULT: Mapping[str, bool] = {"result": False}
CACHED_SUCCESS_FIELDS: Mapping[str, int] = {"_id": 1, "user_id": 1, "result": 1}


# --- Writing ---------------------------------------------------------------------------------------


def submitted_document(
    task_id: str,
    user_id: str,
    config: BacktestConfig,
    *,
    created_at: datetime,
    idempotency_key: str | None = None,
    strategy_ref: Mapping[str, Any] | None = None,
) -> BacktestDocument:
    """Return the document of a new submission: PENDING at seq 0, before the results writer's first event."""
    document: BacktestDocument = {
        "_id": task_id,
        "task_id": task_id,
        "user_id": user_id,
        "state": TaskState.PENDING.value,
        "seq": 0,
        "config": config.model_dump(mode="json", by_alias=True),
        "created_at": created_at,
        "updated_at": created_at,
    }
    if idempotency_key is not None:
        document["idempotency_key"] = idempotency_key
    if strategy_ref is not None:
        document["strategy_ref"] = dict(strategy_ref)
    return document


def state_fields(event: BacktestEvent) -> BacktestDocument:
    """Return the fields an event sets when it is newer than the stored state."""
    fields: BacktestDocument = {
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
            fields["attempt"] = event.attempt
            fields["started_at"] = event.occurred_at
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
            fields["result"] = event.result.model_dump(mode="json", by_alias=True, context=PACKED)
            fields["cached_from"] = event.cached_from
            fields["failure"] = None
            fields["finished_at"] = event.occurred_at
            fields["progress"] = {"fraction": 1.0, "stage": "done"}
        case BacktestFailed():
            fields["failure"] = event.failure.model_dump(mode="json")
            fields["finished_at"] = event.occurred_at
        case BacktestCancelled():
            fields["finished_at"] = event.occurred_at
    return fields


def fact_fields(event: BacktestEvent) -> BacktestDocument:
    """Return the write-once fields of an event (only BacktestAccepted has any)."""
    if not isinstance(event, BacktestAccepted):
        return {}
    return {
        "user_id": event.user_id,
        "config": event.config.model_dump(mode="json", by_alias=True),
        "cache_key": event.cache_key,
        "created_at": event.occurred_at,
    }


# --- Reading ---------------------------------------------------------------------------------------


def task_id_of(document: Mapping[str, Any]) -> str:
    """Return the task id of a stored document (its `_id`; `task_id` may be projected out)."""
    return str(document["_id"])


def read_result(stored: Mapping[str, Any]) -> BacktestResult:
    """Validate a stored `result` (trades packed, or as objects in documents of older writers)."""
    return BacktestResult.model_validate(stored)


def metric_field(metric: str) -> str:
    """Return the dotted path of one of the result's metrics (a field of
    `backtest_core.model.results.Metrics`)."""
    return f"result.metrics.{metric}"


def cached_success_filter(cache_key: str) -> dict[str, Any]:
    """Return the filter of a SUCCESS document with a result for `cache_key` (the scheduler's cache hit)."""
    return {"cache_key": cache_key, "state": TaskState.SUCCESS.value, "result": {"$ne": None}}


def same_setup_filter(user_id: str, config: BacktestConfig) -> dict[str, Any]:
    """Return the filter of a user's SUCCESS documents with the strategy, symbols and interval of `config`."""
    stored = config.model_dump(mode="json", by_alias=True)
    return {
        "user_id": user_id,
        "state": TaskState.SUCCESS.value,
        "config.strategy": stored["strategy"],
        "config.symbols": stored["symbols"],
        "config.interval": stored["interval"],
    }
