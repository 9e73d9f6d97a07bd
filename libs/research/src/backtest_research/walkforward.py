"""Walk-forward validation: in each fold a sweep on the train window picks the best params by the
objective; those params trade the test window, the indicators warmed up on the bars before it.

Folds over the bars (of the symbols' union grid): rolling, train [k*step, k*step + train), or anchored,
train [0, train + k*step); the test window follows the train window after `gap` bars (purge/embargo)
and lasts `test` bars; `step` defaults to `test`. The out-of-sample run of a fold covers train + gap +
test bars with every signal before the test window dropped, so no position is opened before it; it
starts with the equity the previous fold ended with (a position still open at a fold's end is marked at
its last close, then the next fold starts flat). Out-of-sample metrics come from the test window's
equity alone (backtest_core.metrics, one source); the stitched curve chains the folds' windows.
Walk-forward efficiency = annualised out-of-sample return (CAGR of the stitched curve) / the mean of
the folds' annualised in-sample returns (their best trials' CAGR); None when that mean is not > 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from backtest_core.candles import Candles, interval_ns
from backtest_core.config import BacktestConfig
from backtest_core.engine import run_backtest
from backtest_core.metrics import (
    bar_returns,
    cagr_pct,
    max_drawdown,
    periods_per_year,
    sharpe_ratio,
    sortino_ratio,
)
from backtest_core.orchestrator import SignalPath, SymbolProgress, in_process_signals
from backtest_core.strategy import SignalArrays

from backtest_research.space import SpaceError, Value
from backtest_research.sweep import Curve, Objective, Trial, keep_curve, run_sweep

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
    if bars < 1 and option != "--gap":
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


def curve_metrics(start_equity: float, equity: np.ndarray, interval: str) -> dict[str, Any]:
    """Return-based metrics of an equity window that starts from `start_equity` (before its first bar)."""
    ppy = periods_per_year(interval)
    returns = bar_returns(np.concatenate([[start_equity], equity]))
    final = float(equity[-1]) if len(equity) else start_equity
    drawdown, duration = max_drawdown(equity)
    return {
        "start_equity": start_equity,
        "final_equity": final,
        "total_return_pct": (final / start_equity - 1.0) * 100.0,
        "cagr_pct": cagr_pct(start_equity, final, len(equity), ppy),
        "sharpe": sharpe_ratio(returns, ppy),
        "sortino": sortino_ratio(returns, ppy),
        "max_drawdown_pct": drawdown,
        "max_drawdown_duration_bars": duration,
        "bars": len(equity),
    }


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class FoldResult:
    """A fold's windows (ISO-8601 UTC, end exclusive), the chosen params and both sides' metrics."""

    fold: Fold
    window: dict[str, dict[str, str]]
    params: dict[str, Value] | None
    in_sample: dict[str, Any] | None
    out_of_sample: dict[str, Any] | None
    trades: int


@dataclass(frozen=True, slots=True)
class WalkForward:
    """The folds, the stitched out-of-sample curve (times ns, equity) and its metrics, the efficiency."""

    folds: list[FoldResult]
    times: np.ndarray
    equity: np.ndarray
    oos_metrics: dict[str, Any]
    efficiency: float | None

    def as_json(self) -> dict[str, Any]:
        """The contract of `backtest walkforward --json`."""
        return {
            "folds": [
                {
                    **f.window,
                    "params": f.params,
                    "in_sample": f.in_sample,
                    "out_of_sample": f.out_of_sample,
                    "trades": f.trades,
                }
                for f in self.folds
            ],
            "oos": {
                "metrics": self.oos_metrics,
                "equity": [
                    {"time": _iso(int(t)), "equity": float(v)}
                    for t, v in zip(self.times, self.equity, strict=True)
                ],
            },
            "efficiency": self.efficiency,
        }


def _bound(times: np.ndarray, index: int, step_ns: int) -> int:
    """The open time of bar `index`, or one interval past the last bar (an exclusive end)."""
    return int(times[index]) if index < len(times) else int(times[-1]) + step_ns


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
    step_ns = interval_ns(base.interval)
    cash = base.cash
    results, pieces_t, pieces_e = [], [], []
    in_sample_cagrs = []
    for number, fold in enumerate(folds):
        t = {
            k: _bound(times, getattr(fold, k), step_ns)
            for k in ("train_start", "train_end", "test_start", "test_end")
        }
        window = {
            "train": {"start": _iso(t["train_start"]), "end": _iso(t["train_end"])},
            "test": {"start": _iso(t["test_start"]), "end": _iso(t["test_end"])},
        }
        train_config = base.model_copy(update={"start": _at(t["train_start"]), "end": _at(t["train_end"])})
        sweep = run_sweep(train_config, candles, planned, objective, workers=workers)
        best: Trial | None = sweep.best
        if best is None or best.metrics is None:
            results.append(FoldResult(fold, window, None, None, None, 0))
            continue
        in_sample_cagrs.append(best.metrics.get("cagr_pct"))
        oos_config = base.model_copy(
            update={
                "params": {**base.params, **best.params},
                "start": _at(t["train_start"]),
                "end": _at(t["test_end"]),
                "cash": cash,
            }
        )
        kept: list[Curve] = []
        result = run_backtest(
            BacktestConfig.model_validate(oos_config.model_dump()),
            candles,
            equity_points_max=2,
            signal_source=trading_from(t["test_start"]),
            on_equity=keep_curve(kept),
        )
        grid, equity = kept[0]
        inside = grid >= t["test_start"]
        oos = curve_metrics(cash, equity[inside], base.interval)
        results.append(FoldResult(fold, window, best.params, best.metrics, oos, result.metrics.trade_count))
        pieces_t.append(grid[inside])
        pieces_e.append(equity[inside])
        cash = float(equity[inside][-1])
        if on_fold:
            on_fold(number)
    stitched_t = np.concatenate(pieces_t) if pieces_t else np.zeros(0, np.int64)
    stitched_e = np.concatenate(pieces_e) if pieces_e else np.zeros(0)
    oos_metrics = curve_metrics(base.cash, stitched_e, base.interval) if len(stitched_e) else {}
    known = [c for c in in_sample_cagrs if c is not None]
    mean_is = sum(known) / len(known) if known else None
    oos_cagr = oos_metrics.get("cagr_pct")
    efficiency = oos_cagr / mean_is if oos_cagr is not None and mean_is is not None and mean_is > 0 else None
    return WalkForward(results, stitched_t, stitched_e, oos_metrics, efficiency)


def _at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1_000)
