"""Typed errors of the scheduler; each message says what was expected and what it was."""

from backtest_core.contracts import TaskState


class SchedulerError(Exception):
    """Base class of every error the scheduler raises on purpose."""


class IllegalTransition(SchedulerError):
    """A state change the state machine does not allow."""

    def __init__(self, current: TaskState | None, target: TaskState) -> None:
        shown = current.value if current is not None else "nothing"
        super().__init__(f"a task in state {shown} cannot move to {target.value}")
        self.current = current
        self.target = target


class TaskConflict(SchedulerError):
    """The stored task changed since it was read (another writer won); the caller retries."""
