"""The events of a walk-forward's stored change, as pure functions of the record before and after it.

Each milestone has one message id, derived from the walk-forward and what happened, so a change decided
twice (a redelivered message) publishes events JetStream stores once:

- `<id>-fold-<n>-trained`: the fold's sweep chose its params;
- `<id>-fold-<n>-ended`: the fold ended (DONE with its out-of-sample metrics, NO_TRIAL, FAILED, CANCELLED);
- `<id>-<STATE>` and `<id>-<STATE>-finished`: the walk-forward changed state, or finished.
"""

from __future__ import annotations

from datetime import datetime

from backtest_core.contracts import WalkForwardEvent
from backtest_research.walkforward_records import ENDED_FOLDS, FoldRecord, WalkForwardRecord


def walkforward_events(
    before: WalkForwardRecord, after: WalkForwardRecord, now: datetime
) -> list[WalkForwardEvent]:
    """What `after` (the stored change of `before`) publishes: each fold's milestones in fold order, then
    the walk-forward's new state if it changed."""
    done = after.counts()["done"]

    def event(message_id: str, fold: FoldRecord | None = None) -> WalkForwardEvent:
        return WalkForwardEvent(
            message_id=message_id,
            occurred_at=now,
            walkforward_id=after.walkforward_id,
            user_id=after.user_id,
            state=after.state,
            finished=after.finished_at is not None,
            folds_total=len(after.folds),
            folds_done=done,
            fold=None if fold is None else fold.number,
            fold_state=None if fold is None else fold.state.value,
            params=None if fold is None else fold.params,
            out_of_sample=None if fold is None else fold.out_of_sample,
        )

    events = []
    prefix = after.walkforward_id
    for was, fold in zip(before.folds, after.folds, strict=True):
        if was.params is None and fold.params is not None:
            events.append(event(f"{prefix}-fold-{fold.number}-trained", fold))
        if was.state not in ENDED_FOLDS and fold.state in ENDED_FOLDS:
            events.append(event(f"{prefix}-fold-{fold.number}-ended", fold))
    finished_now = before.finished_at is None and after.finished_at is not None
    if before.state is not after.state or finished_now:
        events.append(event(f"{prefix}-{after.state.value}" + ("-finished" if after.finished_at else "")))
    return events
