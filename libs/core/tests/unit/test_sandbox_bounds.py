"""Every field that crosses the sandbox boundary is bounded: stage, fraction, failure text."""

from __future__ import annotations

import pytest
from backtest_core.contracts import (
    MAX_STAGE_CHARS,
    BacktestProgressed,
    Failure,
    FailureReason,
    RunProgressed,
    SandboxError,
    SandboxProgress,
)
from pydantic import ValidationError

TASK = "a" * 32


@pytest.mark.parametrize(
    "stage",
    ["x" * (MAX_STAGE_CHARS + 1), "<script>alert(1)</script>", "signals\nmetrics", "", "Signals"],
    ids=["too-long", "markup", "newline", "empty", "upper-case"],
)
def test_a_stage_that_is_not_a_short_lowercase_name_is_rejected_everywhere_it_travels(stage: str) -> None:
    for build in (
        lambda: SandboxProgress(fraction=0.5, stage=stage),
        lambda: RunProgressed(task_id=TASK, attempt=1, fraction=0.5, stage=stage),
        lambda: BacktestProgressed(task_id=TASK, user_id="u", seq=2, fraction=0.5, stage=stage),
    ):
        with pytest.raises(ValidationError, match="stage"):
            build()


def test_the_engines_stage_names_and_a_64_character_stage_are_accepted() -> None:
    names = ["loading", "signals", "portfolio", "metrics", "done", "s" * MAX_STAGE_CHARS]

    stages = [SandboxProgress(fraction=0.5, stage=name).stage for name in names]

    assert stages == names and MAX_STAGE_CHARS == 64


@pytest.mark.parametrize("fraction", [float("nan"), -0.01, 1.01, float("inf")])
def test_a_fraction_outside_0_1_is_rejected(fraction: float) -> None:
    with pytest.raises(ValidationError, match="fraction"):
        SandboxProgress(fraction=fraction, stage="signals")


def test_a_sandbox_error_longer_than_the_failure_limits_is_rejected() -> None:
    with pytest.raises(ValidationError, match="message"):
        SandboxError(failure=Failure(reason=FailureReason.STRATEGY_ERROR, message="m" * 10_001))
    with pytest.raises(ValidationError, match="traceback"):
        SandboxError(
            failure=Failure(reason=FailureReason.STRATEGY_ERROR, message="m", traceback="t" * 100_001)
        )
