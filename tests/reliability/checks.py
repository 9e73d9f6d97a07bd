"""The invariant every reliability test ends with: one terminal state and one document per backtest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from backtest_testinfra.stack import Stack
from backtest_testinfra.stack_clients import TERMINAL


def assert_exactly_once(
    stack: Stack, task_ids: Sequence[str], state: str = "SUCCESS"
) -> list[dict[str, Any]]:
    """Assert: one `backtests` document per task and none other, each in `state`, each with exactly
    one terminal event in BACKTEST_EVENTS, results on every SUCCESS. Return the documents."""
    documents = stack.documents()
    per_id = Counter(doc["_id"] for doc in documents)
    assert sorted(per_id) == sorted(task_ids), (
        f"expected one document per submitted task ({len(task_ids)}), found ids of {len(per_id)}"
    )
    assert set(per_id.values()) == {1}
    states = Counter(doc["state"] for doc in documents)
    assert states == Counter({state: len(task_ids)}), f"expected {len(task_ids)} x {state}, was {states}"
    terminal_events = stack.terminal_event_counts(task_ids)
    assert Counter(terminal_events.values()) == Counter({1: len(task_ids)}), (
        f"expected exactly one terminal event per task, counts were {Counter(terminal_events.values())}"
    )
    if state == "SUCCESS":
        missing = [doc["_id"] for doc in documents if not doc.get("result", {}).get("metrics")]
        assert missing == [], f"SUCCESS documents without a result: {missing}"
    assert all(state in TERMINAL for state in states)
    return documents


def assert_chunks_once(stack: Stack, trial_task_ids: Sequence[str]) -> Counter[str]:
    """Assert, for the chunk tasks that ran a sweep's trials (one task id per trial): each chunk was
    accepted once and ended once, and none has a `backtests` document (its events are the sweeper's).
    Return how many trials each chunk ran."""
    chunks = Counter(trial_task_ids)
    accepted = {
        task: sum(e["state"] == "PENDING" for e in events) for task, events in stack.events_by_task().items()
    }
    assert {task: accepted.get(task, 0) for task in chunks} == dict.fromkeys(chunks, 1), accepted
    terminal = stack.terminal_event_counts(list(chunks))
    assert terminal == dict.fromkeys(chunks, 1), f"terminal events per chunk: {terminal}"
    assert stack.documents(list(chunks)) == [], "a chunk's events wrote a `backtests` document"
    return chunks
