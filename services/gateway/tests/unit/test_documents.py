"""Stored `backtests` documents (as the results writer shapes them) read back as TaskRecords."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.contracts import FailureReason, TaskState
from backtest_core.model.config import BacktestConfig
from backtest_gateway.adapters.mongo_tasks import record_from_document, submission_document
from backtest_gateway.ports import StrategyRef, TaskRecord

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_results_writer_document_with_nested_progress_reads_as_record():
    doc = {
        "_id": "ab" * 16,
        "task_id": "ab" * 16,
        "user_id": "alice",
        "state": "PROGRESS",
        "seq": 3,
        "attempt": 2,
        "progress": {"fraction": 0.375, "stage": "proposals"},
        "config": {"strategy": {"module": "m", "class": "C"}, "symbols": ["BTCUSD"]},
        "cache_key": "c" * 64,
        "created_at": WHEN,
        "updated_at": WHEN,
        "last_event_id": "x",
        "retry": {"attempt": 2, "delay_s": 1.0},
    }

    record = record_from_document(doc)

    assert (record.state, record.seq, record.attempt) == (TaskState.PROGRESS, 3, 2)
    assert (record.progress, record.stage) == (0.375, "proposals")
    assert record.config is not None and record.config.symbols == ["BTCUSD"]


def test_failure_document_reads_reason_and_traceback():
    doc = {
        "_id": "cd" * 16,
        "user_id": "bob",
        "state": "FAILURE",
        "seq": 4,
        "failure": {"reason": "strategy_error", "message": "ZeroDivisionError", "traceback": "line 3"},
    }

    record = record_from_document(doc)

    assert record.task_id == "cd" * 16
    assert record.failure is not None
    assert (record.failure.reason, record.failure.traceback) == (FailureReason.STRATEGY_ERROR, "line 3")


def test_pending_submission_document_keeps_id_seq_0_and_bson_dates():
    config = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"])
    ref = StrategyRef(owner="carol", name="mine", version=2)
    record = TaskRecord(
        task_id="ef" * 16,
        user_id="carol",
        state=TaskState.PENDING,
        config=config,
        idempotency_key="k-1",
        strategy_ref=ref,
        created_at=WHEN,
        updated_at=WHEN,
    )

    doc = submission_document(record)

    assert doc["_id"] == "ef" * 16
    assert (doc["state"], doc["seq"]) == ("PENDING", 0)
    assert doc["created_at"] is WHEN
    assert doc["strategy_ref"] == {"owner": "carol", "name": "mine", "version": 2}
    assert "progress" not in doc and "result" not in doc
    assert record_from_document(doc) == record


def test_submission_without_config_is_refused_naming_it():
    record = TaskRecord(task_id="ef" * 16, user_id="carol", state=TaskState.PENDING, created_at=WHEN)

    with pytest.raises(ValueError, match="needs its config and created_at, was config=None"):
        submission_document(record)
