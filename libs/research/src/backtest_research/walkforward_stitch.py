"""The one implementation of a walk-forward's arithmetic, shared by `backtest walkforward` (in process)
and the platform (the sweeper): a fold's windows as times, the configs its two runs take, its
out-of-sample metrics from the test window's equity, the stitched curve, its metrics and the efficiency.

Walk-forward efficiency = annualised out-of-sample return (CAGR of the stitched curve) / the mean of the
folds' annualised in-sample returns (their best trials' CAGR); None when that mean is not > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from backtest_core.metrics.performance import (
    bar_returns,
    cagr_pct,
    max_drawdown,
    periods_per_year,
    sharpe_ratio,
    sortino_ratio,
)
from backtest_core.model.candles import interval_ns
from backtest_core.model.config import BacktestConfig

from backtest_research.space import Value


@dataclass(frozen=True, slots=True)
class FoldWindow:
    """Open times (ns UTC) bounding a fold's train and test windows, each end exclusive."""

    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def as_json(self) -> dict[str, dict[str, str]]:
        """The fold's windows as ISO-8601 UTC times (what --start/--end accept)."""
        return {
            "train": {"start": iso_time(self.train_start), "end": iso_time(self.train_end)},
            "test": {"start": iso_time(self.test_start), "end": iso_time(self.test_end)},
        }


def iso_time(ns: int) -> str:
    """An open time (ns UTC) as ISO-8601 UTC to the second."""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_time(ns: int) -> datetime:
    """An open time (ns UTC) as a timezone-aware datetime (microseconds)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1_000)


def bar_bound(times: np.ndarray, index: int, interval: str) -> int:
    """The open time of bar `index`, or one interval past the last bar (an exclusive end)."""
    return int(times[index]) if index < len(times) else int(times[-1]) + interval_ns(interval)


def train_config(base: BacktestConfig, window: FoldWindow) -> BacktestConfig:
    """The base config over the fold's train window: what its in-sample sweep runs."""
    return base.model_copy(update={"start": utc_time(window.train_start), "end": utc_time(window.train_end)})


def oos_config(
    base: BacktestConfig, window: FoldWindow, params: Mapping[str, Value], cash: float
) -> BacktestConfig:
    """The out-of-sample run of a fold: the chosen params from the train window's start (the warm-up)
    to the test window's end, starting with `cash` (signals before the test window are dropped by the
    caller's signal source)."""
    return BacktestConfig.model_validate(
        {
            **base.model_dump(),
            "params": {**base.params, **params},
            "start": utc_time(window.train_start),
            "end": utc_time(window.test_end),
            "cash": cash,
        }
    )


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


@dataclass(frozen=True, slots=True)
class FoldTest:
    """A fold's out-of-sample run cut to its test window: times (ns), equity, metrics, trade count."""

    times: np.ndarray
    equity: np.ndarray
    metrics: dict[str, Any]
    trades: int

    @property
    def final_equity(self) -> float:
        """The equity the next fold starts with."""
        return float(self.equity[-1])


def cut_to_test(
    cash: float, times: np.ndarray, equity: np.ndarray, window: FoldWindow, interval: str, trades: int
) -> FoldTest:
    """The test window's part of an out-of-sample run's per-bar curve, and its metrics from `cash`."""
    inside = times >= window.test_start
    kept = np.asarray(equity, dtype=np.float64)[inside]
    return FoldTest(
        np.asarray(times, dtype=np.int64)[inside], kept, curve_metrics(cash, kept, interval), trades
    )


@dataclass(frozen=True, slots=True)
class FoldResult:
    """A fold's windows (ISO-8601 UTC, end exclusive), the chosen params and both sides' metrics."""

    window: dict[str, dict[str, str]]
    params: dict[str, Value] | None
    in_sample: dict[str, Any] | None
    out_of_sample: dict[str, Any] | None
    trades: int


@dataclass(frozen=True, slots=True)
class FoldOutcome:
    """What a fold produced: its window, the best trial's params and metrics (None: no eligible trial)
    and the out-of-sample run (None when there was no best trial)."""

    window: FoldWindow
    params: dict[str, Value] | None
    in_sample: dict[str, Any] | None
    test: FoldTest | None


@dataclass(frozen=True, slots=True)
class WalkForward:
    """The folds, the stitched out-of-sample curve (times ns, equity) and its metrics, the efficiency."""

    folds: list[FoldResult]
    times: np.ndarray
    equity: np.ndarray
    oos_metrics: dict[str, Any]
    efficiency: float | None

    def as_json(self) -> dict[str, Any]:
        """The contract of `backtest walkforward --json` (and of the platform's result)."""
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
                    {"time": iso_time(int(t)), "equity": float(v)}
                    for t, v in zip(self.times, self.equity, strict=True)
                ],
            },
            "efficiency": self.efficiency,
        }


def next_cash(base: BacktestConfig, outcomes: Sequence[FoldOutcome]) -> float:
    """The equity the next out-of-sample run starts with: the last tested fold's final equity, else cash."""
    tested = [o.test for o in outcomes if o.test is not None]
    return tested[-1].final_equity if tested else base.cash


def stitch(base: BacktestConfig, outcomes: Sequence[FoldOutcome]) -> WalkForward:
    """The walk-forward of the folds' outcomes, in fold order: the stitched curve, its metrics, efficiency."""
    folds = [
        FoldResult(
            o.window.as_json(),
            o.params if o.test is not None else None,
            o.in_sample if o.test is not None else None,
            o.test.metrics if o.test is not None else None,
            o.test.trades if o.test is not None else 0,
        )
        for o in outcomes
    ]
    tests = [o.test for o in outcomes if o.test is not None]
    times = np.concatenate([t.times for t in tests]) if tests else np.zeros(0, np.int64)
    equity = np.concatenate([t.equity for t in tests]) if tests else np.zeros(0)
    oos_metrics = curve_metrics(base.cash, equity, base.interval) if len(equity) else {}
    cagrs = [o.in_sample.get("cagr_pct") for o in outcomes if o.test is not None and o.in_sample]
    known = [c for c in cagrs if c is not None]
    mean_is = sum(known) / len(known) if known else None
    oos_cagr = oos_metrics.get("cagr_pct")
    efficiency = oos_cagr / mean_is if oos_cagr is not None and mean_is is not None and mean_is > 0 else None
    return WalkForward(folds, times, equity, oos_metrics, efficiency)
