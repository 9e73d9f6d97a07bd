"""Walk-forward validation: in each fold a sweep on the train window picks the best params by the
objective; those params trade the test window, the indicators warmed up on the bars before it.

Folds over the bars (of the symbols' union grid): rolling, train [k*step, k*step + train), or anchored,
train [0, train + k*step); the test window follows the train window after `gap` bars (purge/embargo)
and lasts `test` bars; `step` defaults to `test`. The out-of-sample run of a fold covers train + gap +
test bars with every signal before the test window dropped, so no position is opened before it; it
starts with the equity the previous fold ended with (a position still open at a fold's end is marked at
its last close, then the next fold starts flat). Out-of-sample metrics come from the test window's
equity alone (backtest_core.metrics.performance, one source); the stitched curve chains the folds' windows.
Walk-forward efficiency = annualised out-of-sample return (CAGR of the stitched curve) / the mean of
the folds' annualised in-sample returns (their best trials' CAGR); None when that mean is not > 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from backtest_core.engine.orchestrator import SignalPath, SymbolProgress, in_process_signals
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles, interval_ns
from backtest_core.model.config import BacktestConfig
from backtest_core.strategy import SignalArrays

from backtest_research.space import SpaceError, Value
from backtest_research.sweep import Curve, Objective, Trial, keep_curve, run_sweep
from backtest_research.walkforward_stitch import (
    FoldOutcome,
    FoldWindow,
    WalkForward,
    bar_bound,
    cut_to_test,
    next_cash,
    oos_config,
    stitch,
    train_config,
)

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT_NS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_length(text: str, interval: str, option: str) -> int:
    """Read a count of bars (`500`) or a duration (`90d`, `12h`, `30m`, `2w`) as bars of `interval`."""
    if text.isdigit():
        bars = int(text)
    else:
        found = _DURATION.match(text.strip())
        if found is None:
            raise SpaceError(f"option {option}: a count of bars or a duration like 90d, was {text!r}")
        bars = int(found[1]) * _UNIT_NS[found[2]] * 1_000_000_000 // interval_ns(interval)
    if bars < 1 and option not in ("--gap", "gap"):
        raise SpaceError(f"option {option}: at least one bar, was {text!r}")
    return bars


@dataclass(frozen=True, slots=True)
class Fold:
    """Bar indices [start, end) of a fold's train and test windows."""

    train_start: int
    train_end: int
    test_start: int
    test_end: int


def plan_folds(
    bars: int, train: int, test: int, step: int | None = None, *, anchored: bool = False, gap: int = 0
) -> list[Fold]:
    """Every fold whose test window ends within `bars`."""
    step = step or test
    folds = []
    k = 0
    while True:
        start = 0 if anchored else k * step
        end = train + k * step
        if end + gap + test > bars:
            break
        folds.append(Fold(start, end, end + gap, end + gap + test))
        k += 1
    if not folds:
        raise SpaceError(f"no fold fits: train {train} + gap {gap} + test {test} bars > the data's {bars}")
    return folds


def trading_from(start_ns: int) -> Callable[..., dict[str, SignalArrays]]:
    """A signal source that computes the strategy's signals on every bar and drops those before
    `start_ns`: the indicators warm up on earlier bars, no position opens before it."""

    def source(
        config: BacktestConfig,
        candles: Mapping[str, Candles],
        path: SignalPath,
        progress: SymbolProgress | None,
    ) -> dict[str, SignalArrays]:
        signals = in_process_signals(config, candles, path, progress)
        out = {}
        for symbol, arrays in signals.items():
            side = arrays.side.copy()
            side[candles[symbol].open_time < start_ns] = 0
            out[symbol] = replace(arrays, side=side)
        return out

    return source


def fold_windows(times: np.ndarray, folds: list[Fold], interval: str) -> list[FoldWindow]:
    """The folds' bar indices as open times on the bar grid `times` (ns), ends exclusive."""
    return [
        FoldWindow(
            *(bar_bound(times, i, interval) for i in (f.train_start, f.train_end, f.test_start, f.test_end))
        )
        for f in folds
    ]


def run_walkforward(
    base: BacktestConfig,
    candles: Mapping[str, Candles],
    planned: list[dict[str, Value]],
    objective: Objective,
    folds: list[Fold],
    *,
    workers: int | None = None,
    on_fold: Callable[[int], None] | None = None,
) -> WalkForward:
    """Run every fold: the in-sample sweep, then the chosen params out of sample with equity carried."""
    times = np.unique(np.concatenate([c.open_time for c in candles.values()]))
    outcomes: list[FoldOutcome] = []
    for number, window in enumerate(fold_windows(times, folds, base.interval)):
        sweep = run_sweep(train_config(base, window), candles, planned, objective, workers=workers)
        best: Trial | None = sweep.best
        if best is None or best.metrics is None:
            outcomes.append(FoldOutcome(window, None, None, None))
            continue
        cash = next_cash(base, outcomes)
        kept: list[Curve] = []
        result = run_backtest(
            oos_config(base, window, best.params, cash),
            candles,
            equity_points_max=2,
            signal_source=trading_from(window.test_start),
            on_equity=keep_curve(kept),
        )
        grid, equity = kept[0]
        test = cut_to_test(cash, grid, equity, window, base.interval, result.metrics.trade_count)
        outcomes.append(FoldOutcome(window, best.params, best.metrics, test))
        if on_fold:
            on_fold(number)
    return stitch(base, outcomes)
