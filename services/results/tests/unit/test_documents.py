"""The document rule: newest seq wins, Accepted's facts survive any arrival order."""

import pytest
from backtest_core.contracts import BacktestFailed, Failure, FailureReason
from backtest_core.contracts.records import fact_fields, state_fields
from backtest_results.documents import WriteOutcome, merge

from ..conftest import T0, lifecycle

pytestmark = pytest.mark.unit


def test_events_in_order_end_in_success_with_result_and_facts() -> None:
    document = None
    for event in lifecycle("a" * 32):
        document, outcome = merge(document, event)
        assert outcome is WriteOutcome.APPLIED
    assert document is not None
    assert (document["_id"], document["state"], document["seq"]) == ("a" * 32, "SUCCESS", 5)
    assert document["progress"] == {"fraction": 1.0, "stage": "done"}
    assert document["result"]["metrics"]["final_equity"] == 1_085_000.0
    assert document["result"]["config"]["strategy"] == {"builtin": "sma_cross"}
    assert document["config"]["params"] == {"fast": 5, "slow": 20}
    assert document["cache_key"] == "k" * 64
    assert document["created_at"] == T0
    assert document["attempt"] == 1


def test_an_older_event_after_a_newer_one_is_stale_and_changes_nothing() -> None:
    accepted, started, early, late, _ = lifecycle()
    document, _ = merge(None, accepted)
    document, _ = merge(document, started)
    document, _ = merge(document, late)

    after, outcome = merge(document, early)

    assert outcome is WriteOutcome.STALE
    assert after == document
    assert (after["seq"], after["progress"]["fraction"]) == (4, 0.9)


def test_a_duplicate_is_stale() -> None:
    accepted, started, *_ = lifecycle()
    document, _ = merge(merge(None, accepted)[0], started)
    again, outcome = merge(document, started)
    assert (outcome, again) == (WriteOutcome.STALE, document)


def test_accepted_arriving_last_still_records_config_and_cache_key_but_not_its_state() -> None:
    accepted, started, *_ = lifecycle()
    document, _ = merge(None, started)

    document, outcome = merge(document, accepted)

    assert outcome is WriteOutcome.STALE
    assert (document["state"], document["seq"]) == ("STARTED", 2)
    assert document["cache_key"] == "k" * 64
    assert document["created_at"] == accepted.occurred_at


def test_failure_is_stored_with_reason_and_traceback() -> None:
    failure = Failure(reason=FailureReason.STRATEGY_ERROR, message="boom", traceback="Traceback ...")
    event = BacktestFailed(task_id="b" * 32, user_id="bob", seq=3, failure=failure)
    fields = state_fields(event)
    assert fields["failure"] == {"reason": "strategy_error", "message": "boom", "traceback": "Traceback ..."}
    assert (fields["state"], fields["finished_at"]) == ("FAILURE", event.occurred_at)
    assert fact_fields(event) == {}
