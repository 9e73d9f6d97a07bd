"""A sweep's trial: one backtest of a base config with the trial's params, and the one rule of what an
error makes of a run. The local sweep (backtest_research.sweep) and a sandbox's chunk of trials
(backtest_core.sandbox.entry) run their trials here; a single sandboxed backtest reads its failure here.

- params the config cannot take, or the strategy's validation refuses (ConfigError: fast >= slow, a
  lookback longer than the data): SKIPPED, never a result;
- any other engine error: FAILURE, its reason `<FailureReason>: <message>` (e.g. `strategy_error: ...`);
- an error that ends the whole run (`BacktestError.ends_run`: the strategy's process was killed, out of
  memory) is raised: the caller stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from backtest_core.contracts.messages import MAX_FAILURE_MESSAGE as MAX_REASON
from backtest_core.contracts.messages import FailureReason
from backtest_core.engine.run import run_backtest
from backtest_core.errors import (
    BacktestError,
    ConfigError,
    DataError,
    StrategyLoadError,
    StrategyRuntimeError,
)
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, Params
from backtest_core.model.results import BacktestResult

TrialState = Literal["SUCCESS", "FAILURE", "SKIPPED"]


def failure_of(error: BacktestError) -> tuple[FailureReason, str, str | None]:
    """The reason, message and user traceback (if any) an engine error ends a run with."""
    match error:
        case ConfigError():
            return FailureReason.INVALID_CONFIG, str(error), None
        case StrategyLoadError():
            return FailureReason.INVALID_STRATEGY, str(error), None
        case StrategyRuntimeError():
            return FailureReason.STRATEGY_ERROR, str(error), error.traceback_text
        case DataError():
            return FailureReason.NO_DATA, str(error), None
    return FailureReason.STRATEGY_ERROR, str(error), None  # e.g. the strategy's process ended early


@dataclass(frozen=True, slots=True)
class TrialRun:
    """How one trial ended: SUCCESS with its result, or SKIPPED / FAILURE with the reason."""

    state: TrialState
    result: BacktestResult | None = None
    reason: str | None = None


def run_trial(
    base: BacktestConfig, params: Params, candles: Mapping[str, Candles], **options: Any
) -> TrialRun:
    """Run `base` with `params` over it on `candles` (`options` go to run_backtest)."""
    try:
        config = base.with_params(params)
    except ValidationError as error:  # e.g. a value of the wrong type for the config's schema
        return TrialRun("SKIPPED", reason=str(error)[:MAX_REASON])
    try:
        result = run_backtest(config, candles, **options)
    except BacktestError as error:
        if error.ends_run:
            raise
        reason, message, _ = failure_of(error)
        if reason is FailureReason.INVALID_CONFIG:
            return TrialRun("SKIPPED", reason=message[:MAX_REASON])
        return TrialRun("FAILURE", reason=f"{reason.value}: {message}"[:MAX_REASON])
    except (ValueError, ArithmeticError) as error:  # a fault of this trial only: the others go on
        return TrialRun("FAILURE", reason=f"{type(error).__name__}: {error}"[:MAX_REASON])
    return TrialRun("SUCCESS", result=result)
