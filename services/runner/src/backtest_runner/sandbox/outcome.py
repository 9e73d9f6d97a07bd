"""What a sandbox run ended as, and the pure rules that classify an exited container."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from backtest_core.contracts import Failure, FailureReason, SandboxError, SandboxResult
from backtest_core.model.results import TaskResult

from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.output import OutputAccountant

SIGKILL_EXIT = 137
# The failure reasons a sandbox may report about itself; anything else (e.g. "infrastructure", which
# would make the scheduler retry) is the platform's to assign, so a line claiming it is bad output.
SANDBOX_REPORTABLE = frozenset(
    {
        FailureReason.INVALID_CONFIG,
        FailureReason.INVALID_STRATEGY,
        FailureReason.STRATEGY_ERROR,
        FailureReason.NO_DATA,
    }
)


class KillReason(StrEnum):
    """Why the runner killed a container."""

    TIMEOUT = "timeout"
    OUTPUT_LIMIT = "output_limit"
    CANCELLED = "cancelled"  # the user cancelled the backtest
    SHUTDOWN = "shutdown"  # the runner is stopping; the job goes back to the queue


class KillSwitch:
    """A thread-safe, one-shot kill request shared by the job loop and the sandbox.

    The first `kill(reason)` wins; the sandbox `arm`s it with a function that kills its container, and
    a kill requested before arming runs the killer as soon as it is armed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: KillReason | None = None
        self._killer: Callable[[], None] | None = None

    @property
    def reason(self) -> KillReason | None:
        """Return the first kill reason, or None if nobody asked."""
        return self._reason

    def kill(self, reason: KillReason) -> None:
        """Ask for the container to be killed; later reasons are ignored."""
        with self._lock:
            if self._reason is not None:
                return
            self._reason = reason
            killer = self._killer
        if killer is not None:
            killer()

    def arm(self, killer: Callable[[], None]) -> None:
        """Register how to kill; runs it at once if a kill was already requested."""
        with self._lock:
            self._killer = killer
            pending = self._reason is not None
        if pending:
            killer()

    def disarm(self) -> None:
        """Forget the killer (the container is gone)."""
        with self._lock:
            self._killer = None


@dataclass(frozen=True, slots=True)
class ContainerExit:
    """How a container ended: its exit code and Docker's `State.OOMKilled`."""

    status_code: int
    oom_killed: bool


@dataclass(frozen=True, slots=True)
class SandboxSucceeded:
    """The sandbox printed a valid result and exited 0."""

    result: TaskResult


@dataclass(frozen=True, slots=True)
class SandboxFailed:
    """The run failed; `failure.reason` says why."""

    failure: Failure


@dataclass(frozen=True, slots=True)
class SandboxAborted:
    """The runner stopped the run on purpose (cancellation or shutdown); nothing is reported as failed."""

    reason: KillReason


SandboxOutcome = SandboxSucceeded | SandboxFailed | SandboxAborted


def failed(reason: FailureReason, message: str, traceback: str | None = None) -> SandboxFailed:
    return SandboxFailed(Failure(reason=reason, message=message[:10_000], traceback=traceback or None))


def _is_memory_error(failure: Failure) -> bool:
    """Return True if the traceback ends in MemoryError or a subclass named so (numpy's
    `numpy._core._exceptions._ArrayMemoryError: Unable to allocate 8.00 TiB ...`)."""
    lines = [line for line in (failure.traceback or "").splitlines() if line.strip()]
    if not lines or lines[-1].startswith(" "):
        return False
    exception_name = lines[-1].split(":", 1)[0].strip()
    return exception_name.endswith("MemoryError") and " " not in exception_name


def _from_error_line(line: SandboxError) -> SandboxFailed:
    failure = line.failure
    if failure.reason not in SANDBOX_REPORTABLE:
        return failed(
            FailureReason.BAD_OUTPUT,
            f"the sandbox reported failure reason {failure.reason.value!r}, expected one of "
            f"{sorted(r.value for r in SANDBOX_REPORTABLE)}",
        )
    if failure.reason is FailureReason.STRATEGY_ERROR and _is_memory_error(failure):
        return failed(
            FailureReason.OUT_OF_MEMORY,
            f"the strategy ran out of memory: {failure.message}",
            failure.traceback,
        )
    return SandboxFailed(failure)


def final_line_outcome(line: SandboxResult | SandboxError) -> SandboxSucceeded | SandboxFailed:
    """Return what one job's final line means by itself (a batch reports each job as its line arrives)."""
    if isinstance(line, SandboxResult):
        return SandboxSucceeded(line.result)
    return _from_error_line(line)


def classify(
    exit: ContainerExit, output: OutputAccountant, kill: KillReason | None, limits: SandboxLimits
) -> SandboxOutcome:
    """Decide what an exited container means, from its exit, its output and why (if) it was killed.

    Precedence: abort (cancel, shutdown) > output cap > a valid result with exit 0 (a run that
    finished just as the clock ran out counts) > timeout > out of memory > the sandbox's own error
    line > bad output.
    """
    if kill in (KillReason.CANCELLED, KillReason.SHUTDOWN):
        return SandboxAborted(kill)
    if kill is KillReason.OUTPUT_LIMIT or output.over_limit:
        return failed(
            FailureReason.OUTPUT_LIMIT,
            f"the sandbox wrote more than the output cap of {limits.output_bytes} bytes "
            f"to stdout + stderr, was at least {output.total_bytes} bytes",
        )
    terminal = output.terminal
    if exit.status_code == 0 and isinstance(terminal, SandboxResult) and output.lines_after_terminal == 0:
        return SandboxSucceeded(terminal.result)
    if kill is KillReason.TIMEOUT:
        return failed(
            FailureReason.TIMEOUT,
            f"the backtest ran longer than the wall-clock limit of {limits.wall_clock_s:g} s",
            output.stderr_tail,
        )
    if exit.oom_killed or exit.status_code == SIGKILL_EXIT:
        return failed(
            FailureReason.OUT_OF_MEMORY,
            f"the sandbox exceeded its memory limit of {limits.memory_bytes // MIB} MiB and was killed "
            f"(exit code {exit.status_code}, OOMKilled={exit.oom_killed})",
            output.stderr_tail,
        )
    if isinstance(terminal, SandboxError) and output.lines_after_terminal == 0:
        return final_line_outcome(terminal)
    return failed(FailureReason.BAD_OUTPUT, _bad_output_message(exit, output), output.stderr_tail)


def _bad_output_message(exit: ContainerExit, output: OutputAccountant) -> str:
    if output.terminal is not None and output.lines_after_terminal:
        what = f"{output.lines_after_terminal} protocol line(s) after the final line"
    elif isinstance(output.terminal, SandboxResult):
        what = "a result line but a non-zero exit code"
    else:
        what = "no result or error line"
    message = (
        f"the sandbox exited with code {exit.status_code} and {what}; expected exactly one final "
        f"result line and exit code 0"
    )
    if output.noise_sample is not None:
        message += f"; {output.noise_lines} non-protocol stdout line(s), first: {output.noise_sample!r}"
    return message
