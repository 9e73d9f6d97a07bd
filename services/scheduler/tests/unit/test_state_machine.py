"""The task state machine: legal moves, illegal moves rejected, terminal states absorb everything."""

import pytest
from backtest_core.contracts import TERMINAL_STATES, TaskState
from backtest_scheduler.errors import IllegalTransition
from backtest_scheduler.state_machine import Outcome, is_terminal, transition

S = TaskState

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (None, S.PENDING),
        (S.PENDING, S.STARTED),
        (S.STARTED, S.PROGRESS),
        (S.PROGRESS, S.PROGRESS),
        (S.PROGRESS, S.SUCCESS),
        (S.PROGRESS, S.FAILURE),
        (S.STARTED, S.RETRY),
        (S.RETRY, S.STARTED),
        (S.PENDING, S.SUCCESS),
        (S.PENDING, S.CANCELLED),
        (S.PROGRESS, S.CANCELLED),
        (S.RETRY, S.CANCELLED),
        (S.RETRY, S.FAILURE),
        (S.PROGRESS, S.STARTED),
    ],
)
def test_legal_moves_are_applied(current: TaskState | None, target: TaskState) -> None:
    assert transition(current, target) is Outcome.APPLIED


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (None, S.STARTED),
        (None, S.SUCCESS),
        (S.PENDING, S.PENDING),
        (S.PENDING, S.PROGRESS),
        (S.STARTED, S.PENDING),
        (S.RETRY, S.PROGRESS),
        (S.RETRY, S.SUCCESS),
        (S.PROGRESS, S.PENDING),
    ],
)
def test_illegal_moves_raise_with_both_states_named(current: TaskState | None, target: TaskState) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(current, target)
    assert target.value in str(raised.value)
    assert (current.value if current else "nothing") in str(raised.value)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("target", list(TaskState))
def test_terminal_states_absorb_every_target(terminal: TaskState, target: TaskState) -> None:
    assert transition(terminal, target) is Outcome.ABSORBED


def test_exactly_success_failure_and_cancelled_are_terminal() -> None:
    assert {state for state in TaskState if is_terminal(state)} == {S.SUCCESS, S.FAILURE, S.CANCELLED}
    assert not is_terminal(None)
