"""classify(): how an exited container maps to success or a distinct failure reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.contracts import Failure, FailureReason, SandboxError, SandboxResult
from backtest_core.model.config import BacktestConfig
from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.outcome import (
    ContainerExit,
    KillReason,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    SandboxSucceeded,
    classify,
)
from backtest_runner.sandbox.output import OutputAccountant
from backtest_testinfra import make_backtest_result

pytestmark = pytest.mark.unit

LIMITS = SandboxLimits(memory_bytes=256 * MIB, wall_clock_s=30.0, output_bytes=10_000)
OK = ContainerExit(status_code=0, oom_killed=False)
KILLED = ContainerExit(status_code=137, oom_killed=False)
OOM = ContainerExit(status_code=137, oom_killed=True)


def _output(*lines: str, stderr: bytes = b"") -> OutputAccountant:
    out = OutputAccountant(limit_bytes=LIMITS.output_bytes * 100, stderr_tail_bytes=1000)
    out.feed_stdout("".join(line + "\n" for line in lines).encode())
    out.feed_stderr(stderr)
    return out


def _error(reason: FailureReason, traceback: str | None = None) -> str:
    return SandboxError(
        failure=Failure(reason=reason, message="it broke", traceback=traceback)
    ).model_dump_json()


def _reason(outcome: SandboxOutcome) -> FailureReason:
    assert isinstance(outcome, SandboxFailed)
    return outcome.failure.reason


CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT"], start=datetime(2020, 1, 1, tzinfo=UTC))
RESULT = SandboxResult(result=make_backtest_result(CONFIG, final_equity=1100.0, bars=3)).model_dump_json()


def test_a_result_line_with_exit_zero_succeeds() -> None:
    outcome = classify(OK, _output(RESULT), None, LIMITS)

    assert isinstance(outcome, SandboxSucceeded)
    assert outcome.result.metrics.final_equity == 1100.0


def test_a_result_that_finished_as_the_clock_ran_out_still_succeeds() -> None:
    assert isinstance(classify(OK, _output(RESULT), KillReason.TIMEOUT, LIMITS), SandboxSucceeded)


def test_a_timeout_kill_is_a_timeout_with_the_limit_in_the_message() -> None:
    outcome = classify(KILLED, _output(), KillReason.TIMEOUT, LIMITS)

    assert _reason(outcome) is FailureReason.TIMEOUT
    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.message == "the backtest ran longer than the wall-clock limit of 30 s"


def test_oom_killed_is_out_of_memory() -> None:
    outcome = classify(OOM, _output(), None, LIMITS)

    assert _reason(outcome) is FailureReason.OUT_OF_MEMORY
    assert isinstance(outcome, SandboxFailed)
    assert "memory limit of 256 MiB" in outcome.failure.message


def test_an_unexplained_sigkill_is_out_of_memory() -> None:
    assert _reason(classify(KILLED, _output(), None, LIMITS)) is FailureReason.OUT_OF_MEMORY


def test_a_python_memory_error_in_the_strategy_is_out_of_memory() -> None:
    traceback = 'Traceback (most recent call last):\n  File "strategy.py", line 3\nMemoryError\n'
    outcome = classify(
        ContainerExit(1, False), _output(_error(FailureReason.STRATEGY_ERROR, traceback)), None, LIMITS
    )

    assert _reason(outcome) is FailureReason.OUT_OF_MEMORY
    assert isinstance(outcome, SandboxFailed) and outcome.failure.traceback == traceback


def test_numpys_memory_error_subclass_in_the_strategy_is_out_of_memory() -> None:
    traceback = (
        'Traceback (most recent call last):\n  File "<user_strategy>", line 8, in decide\n'
        "numpy._core._exceptions._ArrayMemoryError: Unable to allocate 8.00 TiB for an array\n"
    )
    outcome = classify(
        ContainerExit(1, False), _output(_error(FailureReason.STRATEGY_ERROR, traceback)), None, LIMITS
    )

    assert _reason(outcome) is FailureReason.OUT_OF_MEMORY


def test_a_message_that_merely_mentions_memoryerror_stays_a_strategy_error() -> None:
    traceback = "Traceback (most recent call last):\nValueError: expected no MemoryError: here\n"
    outcome = classify(
        ContainerExit(1, False), _output(_error(FailureReason.STRATEGY_ERROR, traceback)), None, LIMITS
    )

    assert _reason(outcome) is FailureReason.STRATEGY_ERROR


def test_crossing_the_output_cap_is_an_output_limit_even_with_a_result() -> None:
    out = OutputAccountant(limit_bytes=10, stderr_tail_bytes=10)
    out.feed_stdout(b"x" * 11)

    assert _reason(classify(OK, out, KillReason.OUTPUT_LIMIT, LIMITS)) is FailureReason.OUTPUT_LIMIT


@pytest.mark.parametrize(
    "reason", [FailureReason.STRATEGY_ERROR, FailureReason.INVALID_STRATEGY, FailureReason.NO_DATA]
)
def test_the_sandbox_error_line_reason_is_kept(reason: FailureReason) -> None:
    outcome = classify(
        ContainerExit(1, False), _output(_error(reason, "Traceback ...\nValueError: x")), None, LIMITS
    )

    assert isinstance(outcome, SandboxFailed)
    assert (outcome.failure.reason, outcome.failure.message) == (reason, "it broke")
    assert outcome.failure.traceback == "Traceback ...\nValueError: x"


@pytest.mark.parametrize(
    "reason", [FailureReason.INFRASTRUCTURE, FailureReason.TIMEOUT, FailureReason.DEAD_LETTER]
)
def test_a_sandbox_claiming_a_platform_reason_is_bad_output(reason: FailureReason) -> None:
    outcome = classify(ContainerExit(1, False), _output(_error(reason)), None, LIMITS)

    assert _reason(outcome) is FailureReason.BAD_OUTPUT


def test_exit_zero_without_a_result_line_is_bad_output_with_the_stderr_tail() -> None:
    outcome = classify(OK, _output("print from user", stderr=b"warning: x\n"), None, LIMITS)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.BAD_OUTPUT
    assert outcome.failure.message == (
        "the sandbox exited with code 0 and no result or error line; expected exactly one final result "
        "line and exit code 0; 1 non-protocol stdout line(s), first: 'print from user'"
    )
    assert outcome.failure.traceback == "warning: x\n"


def test_a_result_line_with_a_non_zero_exit_is_bad_output() -> None:
    assert (
        _reason(classify(ContainerExit(1, False), _output(RESULT), None, LIMITS)) is FailureReason.BAD_OUTPUT
    )


def test_two_final_lines_are_bad_output() -> None:
    assert _reason(classify(OK, _output(RESULT, RESULT), None, LIMITS)) is FailureReason.BAD_OUTPUT


@pytest.mark.parametrize("kill", [KillReason.CANCELLED, KillReason.SHUTDOWN])
def test_a_cancel_or_shutdown_aborts_whatever_the_container_did(kill: KillReason) -> None:
    assert classify(OOM, _output(RESULT), kill, LIMITS) == SandboxAborted(kill)
