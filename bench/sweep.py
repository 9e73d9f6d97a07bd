"""Sweep benchmark: one grid of sma_cross configs on one-minute bars, run by each way side by side.

    python bench/sweep.py [--bars 525600] [--workers 2] [--platform-runners 1,2] [--grid SPEC ...]
                          [--skip backtesting]

Grid: fast 5..50 step 5 x slow 60..140 step 10 = 90 configs (`--grid fast=5:50:5 slow=60:950:10`: 900),
no fees, all in, next-open fills, on the fixed-seed random walk of bench/engine.py. Rows:
  loop         - a single-process Python loop over run_backtest (the baseline)
  sweep        - `backtest sweep`'s local path (backtest_research.sweep.run_sweep, --workers processes)
  vectorbt     - vectorbt broadcasting the grid as 90 columns (MA.run + from_signals), one call
  backtesting  - backtesting.py's Backtest.optimize over the same grid on a tenth of the bars, its time
                 scaled x10 to the whole
  platform/N   - the grid as one sweep through the platform (POST /sweep/submit: gateway, sweeper,
                 scheduler, N runners of 1 slot, a hardened sandbox per trial), submit -> finished;
                 one row per N of --platform-runners ("" skips them), each on a fresh stack
                 (bench/sweep_platform.py)
Every sweep trial's final equity (local and platform) is checked against the loop's (max relative
difference printed), and vectorbt's against ours. Platform overhead per trial = (platform seconds -
loop seconds / N) / trials: what the platform adds to the engine's work, spread over N slots.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd
from backtest_core.engine.run import run_backtest
from backtest_research.space import ParamSpace
from backtest_research.sweep import Objective, run_sweep
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

REPO = Path(__file__).resolve().parents[1]
GRID = ["fast=5:50:5", "slow=60:140:10"]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


engine_bench = _load("bench_engine", REPO / "bench" / "engine.py")
sweep_platform = _load("bench_sweep_platform", REPO / "bench" / "sweep_platform.py")


def timed(label: str, run: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    print(f"  {label:<12} {seconds:8.2f} s", flush=True)
    return seconds, out


def vectorbt_grid(walk: Any, grid: list[dict[str, int]]) -> np.ndarray:
    """vectorbt: every config a column; MA crossings, next-open fills; final values per column."""
    import vectorbt as vbt

    close = pd.Series(walk.close[:, 0])
    open_ = pd.Series(walk.open[:, 0])
    fast = vbt.MA.run(close, [g["fast"] for g in grid]).ma.to_numpy()
    slow = vbt.MA.run(close, [g["slow"] for g in grid]).ma.to_numpy()
    above = fast > slow
    prev = np.vstack([np.zeros((1, len(grid)), bool), above[:-1]])
    valid = ~np.isnan(slow) & ~np.isnan(np.vstack([np.full((1, len(grid)), np.nan), slow[:-1]]))
    entries, exits = above & ~prev & valid, ~above & prev & valid
    entries = np.vstack([np.zeros((1, len(grid)), bool), entries[:-1]])
    exits = np.vstack([np.zeros((1, len(grid)), bool), exits[:-1]])
    columns = pd.RangeIndex(len(grid))
    wide_close = pd.DataFrame(np.repeat(close.to_numpy()[:, None], len(grid), 1), columns=columns)
    wide_open = pd.DataFrame(np.repeat(open_.to_numpy()[:, None], len(grid), 1), columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = vbt.Portfolio.from_signals(
            wide_close, pd.DataFrame(entries, columns=columns), pd.DataFrame(exits, columns=columns),
            price=wide_open, init_cash=engine_bench.CASH, fees=0.0, size=np.inf,
        )  # fmt: skip
    return np.asarray(pf.final_value(), np.float64)


def _sma(values: np.ndarray, n: int) -> np.ndarray:
    out: np.ndarray = pd.Series(values).rolling(n).mean().to_numpy(dtype=np.float64)
    return out


class SmaCross(Strategy):  # type: ignore[misc]
    """backtesting.py's README example with the grid's two params (module level: optimize pickles it)."""

    fast = 10
    slow = 30

    def init(self) -> None:
        self.f = self.I(_sma, self.data.Close, self.fast)
        self.s = self.I(_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.position.close()


def backtesting_grid(walk: Any, bars: int, grid: list[dict[str, int]]) -> int:
    """backtesting.py's optimize over the grid on the first `bars` bars; returns the runs it made."""
    columns = {"Open": walk.open, "High": walk.high, "Low": walk.low, "Close": walk.close}
    frame = pd.DataFrame(
        {name: values[:bars, 0] for name, values in columns.items()},
        index=pd.DatetimeIndex(walk.open_time[:bars].astype("datetime64[ns]")),
    )
    frame["Volume"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, heatmap = Backtest(frame, SmaCross, cash=engine_bench.CASH, commission=0.0).optimize(
            fast=sorted({g["fast"] for g in grid}), slow=sorted({g["slow"] for g in grid}),
            maximize="Sharpe Ratio", return_heatmap=True, max_tries=None,
        )  # fmt: skip
    return len(heatmap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--platform-runners", default="1,2", help="runner counts of the platform rows")
    parser.add_argument("--grid", nargs="+", default=GRID, help="the sweep's space (as `backtest sweep`)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["backtesting", "vectorbt"], help="not run")
    args = parser.parse_args()
    platform_runners = [int(n) for n in args.platform_runners.split(",") if n.strip()]
    walk = engine_bench.random_walk(args.bars, 1)
    setup = engine_bench.our_setup(walk)
    grid = list(ParamSpace.parse(args.grid).grid())
    print(f"{len(grid)} sma_cross configs on {args.bars:,} one-minute bars, {args.workers} workers")
    engine_bench.warm_up()

    def loop() -> list[float]:
        finals = []
        for params in grid:
            config = setup.config.model_copy(update={"params": params})
            finals.append(run_backtest(config, setup.candles, equity_points_max=1_000).metrics.final_equity)
        return finals

    t_loop, loop_finals = timed("loop", loop)
    t_sweep, result = timed(
        "sweep",
        lambda: run_sweep(setup.config, setup.candles, grid, Objective.parse("sharpe"), workers=args.workers),
    )
    t_vbt, vbt_finals = (  # vectorbt holds bars x configs matrices: 900 configs need ~16 GB
        (float("nan"), None)
        if "vectorbt" in args.skip
        else timed("vectorbt", lambda: vectorbt_grid(walk, grid))
    )
    tenth = args.bars // 10
    t_bt, runs = (
        (float("nan"), 0)
        if "backtesting" in args.skip
        else timed(f"backtesting/{tenth:,}", lambda: backtesting_grid(walk, tenth, grid))
    )
    platform: dict[int, float] = {}
    for runners in platform_runners:
        seconds, remote = sweep_platform.platform_sweep(setup.config, setup.candles, args.grid, runners)
        print(f"  {'platform/' + str(runners):<12} {seconds:8.2f} s", flush=True)
        platform[runners] = seconds
        by_params = {tuple(sorted(t["params"].items())): t for t in remote["trials"]}
        finals = np.array([by_params[tuple(sorted(p.items()))]["metrics"]["final_equity"] for p in grid])
        print(f"platform/{runners} vs loop final equity: max relative difference "
              f"{np.max(np.abs(finals / np.array(loop_finals) - 1)):.1e}")  # fmt: skip
    sweep_finals = np.array([t.metrics["final_equity"] for t in result.trials if t.metrics])  # type: ignore[attr-defined]
    ours = np.array(loop_finals)
    print(
        f"sweep vs loop final equity: max relative difference {np.max(np.abs(sweep_finals / ours - 1)):.1e}"
    )
    if vbt_finals is not None:
        gap = np.max(np.abs(vbt_finals / ours - 1))
        print(f"vectorbt vs ours final equity: max relative difference {gap:.1e}")
    if runs:
        print(f"backtesting.py ran {runs} configs on a tenth of the bars")
    print("| way | seconds | trials/s | vs loop |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in (
        ("loop over run_backtest (1 process)", t_loop),
        (f"backtest sweep local ({args.workers} processes)", t_sweep),
        (f"vectorbt broadcasting ({len(grid)} columns)", t_vbt),
        ("backtesting.py optimize (x10 scaled)", t_bt * 10),
        *((f"platform sweep, {n} runner(s) of 1 slot", seconds) for n, seconds in platform.items()),
    ):
        if not math.isnan(seconds):  # a row --skip left out
            print(f"| {name} | {seconds:.2f} | {len(grid) / seconds:.1f} | {t_loop / seconds:.2f}x |")
    if not math.isnan(t_vbt):
        print(f"sweep vs vectorbt: {t_vbt / t_sweep:.2f}x faster")
    for n, seconds in platform.items():
        overhead_ms = (seconds - t_loop / n) / len(grid) * 1000
        versus = "" if math.isnan(t_vbt) else f"{t_vbt / seconds:.2f}x vectorbt, "
        print(f"platform/{n}: {versus}overhead {overhead_ms:.1f} ms a trial")


if __name__ == "__main__":
    main()
