"""The task state machine: which state may follow which. Pure; no I/O.

    (new) -> PENDING -> STARTED -> PROGRESS* -> SUCCESS | FAILURE
                 \\         \\         \\-> RETRY -> STARTED ... (infrastructure faults only)
                  \\-> SUCCESS (cache hit), FAILURE, CANCELLED from any non-terminal state
    (new) -> FAILURE: a submission the scheduler cannot read ends its task at once

STARTED may follow STARTED or PROGRESS: JetStream redelivers a job whose runner died, and the next
runner starts it again. Terminal states (SUCCESS, FAILURE, CANCELLED) absorb everything: a late report
for a finished task is ignored, never an error.
"""

from __future__ import annotations

from enum import StrEnum

from backtest_core.contracts import TERMINAL_STATES, TaskState

from backtest_scheduler.errors import IllegalTransition

S = TaskState

ALLOWED: dict[TaskState | None, frozenset[TaskState]] = {
    None: frozenset({S.PENDING, S.FAILURE}),  # FAILURE: a submission that cannot be read
    S.PENDING: frozenset({S.STARTED, S.RETRY, S.SUCCESS, S.FAILURE, S.CANCELLED}),
    S.STARTED: frozenset({S.STARTED, S.PROGRESS, S.RETRY, S.SUCCESS, S.FAILURE, S.CANCELLED}),
    S.PROGRESS: frozenset({S.STARTED, S.PROGRESS, S.RETRY, S.SUCCESS, S.FAILURE, S.CANCELLED}),
    S.RETRY: frozenset({S.STARTED, S.RETRY, S.FAILURE, S.CANCELLED}),
}


class Outcome(StrEnum):
    """What a requested transition does."""

    APPLIED = "applied"  # the task moves to the target state
    ABSORBED = "absorbed"  # the task is already terminal; the request is ignored


def is_terminal(state: TaskState | None) -> bool:
    """Return whether `state` ends the task."""
    return state in TERMINAL_STATES


def transition(current: TaskState | None, target: TaskState) -> Outcome:
    """Check a move from `current` (None = the task does not exist yet) to `target`.

    Raises IllegalTransition when the move is not allowed from a non-terminal state.
    """
    if current is not None and is_terminal(current):
        return Outcome.ABSORBED
    if target not in ALLOWED[current]:
        raise IllegalTransition(current, target)
    return Outcome.APPLIED
