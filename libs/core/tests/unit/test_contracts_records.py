"""The `backtests` document: what the submission, each event and the readers see of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
    Failure,
    FailureReason,
)
from backtest_core.contracts.records import (
    BACKTEST_INDEXES,
    BACKTESTS_COLLECTION,
    cached_success_filter,
    fact_fields,
    metric_field,
    read_result,
    same_setup_filter,
    state_fields,
    submitted_document,
)
from backtest_core.model.config import BacktestConfig
from backtest_testinfra import make_large_result

pytestmark = pytest.mark.unit

TASK = "ab" * 16
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"], interval="1d")


def test_submission_is_pending_at_seq_0_with_bson_dates_and_only_the_keys_it_has():
    document = submitted_document(TASK, "alice", CONFIG, created_at=T0)

    assert (document["_id"], document["task_id"], document["user_id"]) == (TASK, TASK, "alice")
    assert (document["state"], document["seq"]) == ("PENDING", 0)
    assert document["created_at"] is T0 and document["updated_at"] is T0
    assert document["config"] == CONFIG.model_dump(mode="json", by_alias=True)
    assert sorted(document) == [
        "_id",
        "config",
        "created_at",
        "seq",
        "state",
        "task_id",
        "updated_at",
        "user_id",
    ]


def test_submission_of_an_uploaded_strategy_records_its_reference_and_idempotency_key():
    ref = {"owner": "alice", "name": "mine", "version": 3}

    document = submitted_document(
        TASK, "alice", CONFIG, created_at=T0, idempotency_key="k-1", strategy_ref=ref
    )

    assert (document["idempotency_key"], document["strategy_ref"]) == ("k-1", ref)


def test_each_state_sets_its_progress_attempt_and_timestamps():
    later = T0 + timedelta(seconds=5)
    started = BacktestStarted(task_id=TASK, user_id="alice", seq=2, attempt=1, occurred_at=later)
    progressed = BacktestProgressed(task_id=TASK, user_id="alice", seq=3, fraction=0.25, stage="replay")
    cancelled = BacktestCancelled(task_id=TASK, user_id="alice", seq=4, occurred_at=later)

    assert state_fields(started) == {
        "task_id": TASK,
        "user_id": "alice",
        "state": "STARTED",
        "seq": 2,
        "updated_at": later,
        "last_event_id": started.message_id,
        "attempt": 1,
        "started_at": later,
        "progress": {"fraction": 0.0, "stage": "started"},
    }
    assert state_fields(progressed)["progress"] == {"fraction": 0.25, "stage": "replay"}
    assert (state_fields(cancelled)["state"], state_fields(cancelled)["finished_at"]) == ("CANCELLED", later)


def test_a_retry_records_the_attempt_its_delay_and_the_failure():
    failure = Failure(reason=FailureReason.INFRASTRUCTURE, message="docker daemon unreachable")
    retrying = BacktestRetrying(task_id=TASK, user_id="alice", seq=3, attempt=2, delay_s=4.0, failure=failure)

    fields = state_fields(retrying)

    assert (fields["state"], fields["attempt"]) == ("RETRY", 2)
    assert fields["retry"] == {
        "attempt": 2,
        "delay_s": 4.0,
        "failure": {"reason": "infrastructure", "message": "docker daemon unreachable", "traceback": None},
    }


def test_a_success_stores_the_result_with_packed_trades_that_read_back_equal():
    result = make_large_result(CONFIG, trades=3, equity_points=4)
    success = BacktestSucceeded(task_id=TASK, user_id="alice", seq=5, result=result, cached_from="cd" * 16)

    fields = state_fields(success)

    assert isinstance(fields["result"], dict) and isinstance(fields["result"]["trades"], str)  # packed
    assert read_result(fields["result"]) == result
    assert (fields["cached_from"], fields["failure"]) == ("cd" * 16, None)
    assert fields["progress"] == {"fraction": 1.0, "stage": "done"}


def test_only_accepted_has_write_once_facts():
    accepted = BacktestAccepted(task_id=TASK, user_id="alice", seq=1, config=CONFIG, cache_key="k" * 64)
    started = BacktestStarted(task_id=TASK, user_id="alice", seq=2, attempt=1)

    assert fact_fields(accepted) == {
        "user_id": "alice",
        "config": CONFIG.model_dump(mode="json", by_alias=True),
        "cache_key": "k" * 64,
        "created_at": accepted.occurred_at,
    }
    assert fact_fields(started) == {}


def test_readers_query_the_fields_the_writers_write():
    accepted = BacktestAccepted(task_id=TASK, user_id="alice", seq=1, config=CONFIG, cache_key="k" * 64)
    stored = fact_fields(accepted)
    setup = same_setup_filter("alice", CONFIG)

    assert cached_success_filter("k" * 64) == {
        "cache_key": "k" * 64,
        "state": "SUCCESS",
        "result": {"$ne": None},
    }
    assert (setup["user_id"], setup["state"]) == ("alice", "SUCCESS")
    assert [setup[f"config.{key}"] for key in ("strategy", "symbols", "interval")] == [
        stored["config"][key] for key in ("strategy", "symbols", "interval")
    ]
    assert metric_field("sharpe") == "result.metrics.sharpe"


def test_one_collection_name_and_the_indexes_its_readers_need():
    assert BACKTESTS_COLLECTION == "backtests"
    assert {index.name: index.keys for index in BACKTEST_INDEXES} == {
        "cache_key": (("cache_key", 1),),
        "user_created": (("user_id", 1), ("created_at", -1)),
    }
