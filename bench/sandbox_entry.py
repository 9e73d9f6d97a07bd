"""The cost of running the strategy in its own process: the sandbox entry's per-backtest time.

    python bench/sandbox_entry.py [--repeat 7]

Cases, on a fixed-seed random walk (seed 20240101, 1h bars):
- in process: `run_backtest` with the signals computed in this process vs in a forked strategy process
  (`backtest_core.sandbox.strategy_process.forked_signals`, what the sandbox entry uses), same result
  asserted;
- entry: `python -m backtest_core --job-dir DIR` end to end (interpreter start, imports, job, result line).
Prints the median of `--repeat` runs. Not a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from backtest_core.contracts import SandboxJob
from backtest_core.engine.orchestrator import in_process_signals
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles, write_candles
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_core.sandbox.strategy_process import forked_signals

HOUR = 3_600_000_000_000
PER_BAR = SourceStrategy(
    source=(
        "from backtest_core.strategy import BaseStrategy, NO_SIGNAL, Side\n\n"
        "class Up(BaseStrategy):\n"
        "    def get_required_lookback(self):\n"
        "        return 3\n\n"
        "    def decide(self, df, interval, **p):\n"
        "        c = df.close\n"
        "        return Side.BUY if c[-1] > c[-2] > c[-3] else Side.SELL if c[-1] < c[-2] else NO_SIGNAL\n"
    )
)


def walk(symbol: str, n: int, seed: int) -> Candles:
    """Return n hourly bars of a geometric random walk."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.0005, n))
    high, low = np.maximum(open_, close) * (1 + wick), np.minimum(open_, close) * (1 - wick)
    return Candles(symbol, "1h", np.arange(n, dtype=np.int64) * HOUR, open_, high, low, close, np.ones(n))


def median_s(run: Callable[[], object], repeat: int) -> float:
    """Return the median wall time of `run()` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_case(
    name: str, strategy: str | SourceStrategy, bars: int, params: dict[str, int], repeat: int
) -> str:
    """Time one strategy on 2 symbols of `bars` bars; return the printed line."""
    candles = {s: walk(s, bars, 20240101 + i) for i, s in enumerate(("BTCUSDT", "ETHUSDT"))}
    config = BacktestConfig(strategy=strategy, params=params, symbols=list(candles), interval="1h")
    here = partial(run_backtest, config, candles, equity_points_max=1000, signal_source=in_process_signals)
    forked = partial(run_backtest, config, candles, equity_points_max=1000, signal_source=forked_signals)
    assert forked() == here(), "the forked strategy process changed the result"
    t_here, t_fork = median_s(here, repeat), median_s(forked, repeat)
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp)
        (job / "candles").mkdir()
        for symbol, c in candles.items():
            write_candles(job / "candles" / f"{symbol}.npz", c)
        (job / "job.json").write_text(SandboxJob(task_id="b", config=config).model_dump_json())
        command = [sys.executable, "-I", "-m", "backtest_core", "--job-dir", str(job)]
        t_entry = median_s(partial(subprocess.run, command, capture_output=True, check=True), repeat)
    return (
        f"{name}, 2 x {bars:,} bars: in process {t_here * 1000:.1f} ms, forked strategy process "
        f"{t_fork * 1000:.1f} ms (+{(t_fork - t_here) * 1000:.1f} ms); whole entry {t_entry * 1000:.0f} ms"
    )


def main() -> None:
    """Time each case and print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(time_case("vectorized sma_cross", "sma_cross", 200_000, {"fast": 10, "slow": 30}, args.repeat))
    print(time_case("per-bar decide()", PER_BAR, 20_000, {}, args.repeat))


if __name__ == "__main__":
    main()
