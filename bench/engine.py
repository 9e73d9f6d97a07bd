"""Engine benchmark: our engine beside vectorbt and backtesting.py on the same random-walk data, one run.

Cases (sma_cross 10/30, no fees, all-in unless stated, next-open fills):
  (a) one symbol, 1,000,000 one-minute bars: ours (vectorized signals), vectorbt, backtesting.py
  (b) 100 symbols x 100,000 bars, cash shared across symbols, 1% of equity per position:
      ours, vectorbt (cash_sharing=True, group_by=True)
  (c) ours through the per-bar decide() path on (a), beside backtesting.py on (a)
plus the peak memory (maxrss) of a fresh process running ours on (a).

Usage: python bench/engine.py [--quick] [--bars N] [--symbols N] [--symbol-bars N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py draws a progress bar; keep the output clean

import numpy as np
import pandas as pd
from backtest_core.engine.orchestrator import SignalPath
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, FeeModel

SEED = 20_240_101
START_NS = 1_577_836_800_000_000_000  # 2020-01-01T00:00:00Z
MINUTE_NS = 60_000_000_000
FAST, SLOW = 10, 30
CASH = 1_000_000.0
EQUITY_POINTS = 1_000  # what a service keeps of the curve; metrics still use every bar


@dataclass(frozen=True)
class Walk:
    """OHLC arrays of shape (bars, symbols) of a fixed-seed geometric random walk, 1-minute bars."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    def candles(self, column: int, symbol: str) -> Candles:
        """Return one column as our engine's `Candles`."""
        return Candles(
            symbol=symbol,
            interval="1m",
            open_time=self.open_time,
            open=np.ascontiguousarray(self.open[:, column]),
            high=np.ascontiguousarray(self.high[:, column]),
            low=np.ascontiguousarray(self.low[:, column]),
            close=np.ascontiguousarray(self.close[:, column]),
            volume=np.ones(len(self.open_time)),
        )

    def frame(self, field: str) -> pd.DataFrame:
        """Return one field as a DataFrame with a naive UTC index (vectorbt is ~50x slower on tz-aware)."""
        index = pd.DatetimeIndex(self.open_time.astype("datetime64[ns]"))
        return pd.DataFrame(getattr(self, field), index=index)


def random_walk(bars: int, symbols: int, seed: int = SEED) -> Walk:
    """Return a walk: log-returns N(0, 0.1%) per minute from 100, open = previous close, wicks N(0, 0.05%)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, (bars, symbols)), axis=0))
    open_ = np.vstack([np.full((1, symbols), 100.0), close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0005, (2, bars, symbols)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    open_time = START_NS + MINUTE_NS * np.arange(bars, dtype=np.int64)
    return Walk(open_time, open_, high, low, close)


def symbol_names(count: int) -> list[str]:
    """Return `count` symbol names like S000USDT."""
    return [f"S{i:03d}USDT" for i in range(count)]


@dataclass(frozen=True)
class OurSetup:
    """Our engine's inputs for one case, built before the clock starts (as vectorbt's frames are)."""

    config: BacktestConfig
    candles: dict[str, Candles]


def our_setup(walk: Walk, *, size: float = 1.0) -> OurSetup:
    """Return the config and candles of our engine for every column of `walk`."""
    names = symbol_names(walk.close.shape[1])
    config = BacktestConfig(
        strategy="sma_cross",
        params={"fast": FAST, "slow": SLOW},
        symbols=names,
        interval="1m",
        cash=CASH,
        fees=FeeModel(maker=0.0, taker=0.0),
        fill="next_open",
        size=size,
    )
    return OurSetup(config, {name: walk.candles(i, name) for i, name in enumerate(names)})


def ours(setup: OurSetup, signal_path: SignalPath = "auto") -> tuple[float, int]:
    """Run our engine; return (final equity, trade count). The equity curve kept is downsampled."""
    result = run_backtest(
        setup.config,
        setup.candles,
        equity_points_max=EQUITY_POINTS,
        signal_path=signal_path,
    )
    return result.metrics.final_equity, result.metrics.trade_count


def vectorbt_run(
    close: pd.DataFrame | pd.Series, open_: pd.DataFrame | pd.Series, **portfolio: object
) -> tuple[float, int]:
    """Run vectorbt's idiomatic SMA cross: MA.run, crossed above/below, next-open fill via price=open."""
    import vectorbt as vbt

    fast, slow = vbt.MA.run(close, FAST), vbt.MA.run(close, SLOW)
    entries = fast.ma_crossed_above(slow).vbt.fshift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).vbt.fshift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=open_, init_cash=CASH, fees=0.0, freq="1min", **portfolio
    )
    final = pf.final_value()
    return float(np.sum(final)), int(np.sum(pf.trades.count()))


def backtesting_run(walk: Walk) -> tuple[float, int]:
    """Run backtesting.py's SmaCross (its README example) on column 0; whole units, next-open fills."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        out: np.ndarray = pd.Series(values).rolling(n).mean().to_numpy(dtype=np.float64)
        return out

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    frame = pd.DataFrame(
        {"Open": walk.open[:, 0], "High": walk.high[:, 0], "Low": walk.low[:, 0], "Close": walk.close[:, 0]},
        index=pd.DatetimeIndex(walk.open_time.astype("datetime64[ns]")),
    )
    frame["Volume"] = 1.0
    stats = Backtest(frame, SmaCross, cash=CASH, commission=0.0).run()
    return float(stats["Equity Final [$]"]), int(stats["# Trades"])


@dataclass(frozen=True)
class Timing:
    """Best wall time of `repeat` runs of one engine on one case."""

    case: str
    engine: str
    bars: int
    seconds: float
    final_equity: float
    trades: int

    @property
    def bars_per_second(self) -> float:
        """Bars processed per second (bars x symbols / best wall time)."""
        return self.bars / self.seconds


def timed(case: str, engine: str, bars: int, repeat: int, run: Callable[[], tuple[float, int]]) -> Timing:
    """Run `run` `repeat` times and keep the fastest (the least disturbed by other processes)."""
    best, out = float("inf"), (0.0, 0)
    for _ in range(repeat):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    print(f"  {case:<4} {engine:<20} {bars:>11,} bars {best:9.3f} s {bars / best:>14,.0f} bars/s", flush=True)
    return Timing(case, engine, bars, best, out[0], out[1])


def peak_memory(bars: int) -> dict[str, float]:
    """Run ours on case (a) in a fresh Python process; return its maxrss in MB before and after the run.

    Linux carries a parent's maxrss into a child across fork+exec, so call this while the parent is
    still small (before any data is built); the child also reports VmHWM, which exec resets.
    """
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(bars)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def memory_child(bars: int) -> None:
    """(In the child) build case (a), run ours once, print maxrss in MB before and after."""
    walk = random_walk(bars, 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    ours(our_setup(walk))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(json.dumps({"before_run_mb": before, "peak_mb": after, "vm_hwm_mb": hwm}))


def warm_up() -> None:
    """Compile vectorbt's numba kernels (1-D and grouped 2-D) and import everything before timing."""
    small = random_walk(500, 2, seed=1)
    close, open_ = small.frame("close"), small.frame("open")
    vectorbt_run(close[0], open_[0])
    vectorbt_run(close, open_, cash_sharing=True, group_by=True, size=0.01, size_type="percent")
    ours(our_setup(small, size=0.5))
    ours(our_setup(small, size=0.5), signal_path="per_bar")
    backtesting_run(small)


def main(argv: list[str] | None = None) -> int:
    """Run all cases and print bars/s, ratios and peak memory."""
    parser = argparse.ArgumentParser(description="Benchmark our engine against vectorbt and backtesting.py.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke run")
    parser.add_argument("--bars", type=int, help="bars of case (a) and (c) (default 1,000,000)")
    parser.add_argument("--symbols", type=int, help="symbols of case (b) (default 100)")
    parser.add_argument("--symbol-bars", type=int, help="bars per symbol of case (b) (default 100,000)")
    parser.add_argument("--repeat", type=int, help="runs of each vectorized case, fastest kept (default 3)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    bars = args.bars or (20_000 if args.quick else 1_000_000)
    symbols = args.symbols or (5 if args.quick else 100)
    symbol_bars = args.symbol_bars or (5_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)

    memory = peak_memory(bars)  # first, while this process is small (see peak_memory)
    print(f"warming up (vectorbt numba compile, imports); not timed. cpus={os.cpu_count()}", flush=True)
    warm_up()
    one = random_walk(bars, 1)
    many = random_walk(symbol_bars, symbols, seed=SEED + 1)
    one_close, one_open = one.frame("close")[0], one.frame("open")[0]
    many_c, many_o = many.frame("close"), many.frame("open")
    ours_one, ours_many = our_setup(one), our_setup(many, size=0.01)
    total_b = symbols * symbol_bars
    shared = {"cash_sharing": True, "group_by": True, "size": 0.01, "size_type": "percent"}
    print(f"timing: fastest of {repeat} for vectorized runs, 1 run for per-bar runs", flush=True)
    t = {
        "a_ours": timed("(a)", "ours", bars, repeat, lambda: ours(ours_one)),
        "a_vbt": timed("(a)", "vectorbt", bars, repeat, lambda: vectorbt_run(one_close, one_open)),
        "b_ours": timed("(b)", "ours", total_b, repeat, lambda: ours(ours_many)),
        "b_vbt": timed("(b)", "vectorbt", total_b, repeat, lambda: vectorbt_run(many_c, many_o, **shared)),
        "c_ours": timed("(c)", "ours per-bar decide", bars, 1, lambda: ours(ours_one, "per_bar")),
        "a_bt": timed("(a,c)", "backtesting.py", bars, 1, lambda: backtesting_run(one)),
    }
    report(t, memory)
    return 0


def report(t: dict[str, Timing], memory: dict[str, float]) -> None:
    """Print the ratios (ours bars/s over the peer's), agreement of results, and memory."""

    def ratio(a: str, b: str) -> float:
        return t[a].bars_per_second / t[b].bars_per_second

    print("\nratios (bars/s ours / bars/s peer; > 1 means ours is faster):")
    print(f"  (a) ours / vectorbt               {ratio('a_ours', 'a_vbt'):8.2f}x   target >= 3")
    print(f"  (b) ours / vectorbt               {ratio('b_ours', 'b_vbt'):8.2f}x   target >= 5")
    print(f"  (c) ours per-bar / backtesting.py {ratio('c_ours', 'a_bt'):8.2f}x   target >= 1")
    print(f"  (a) ours / backtesting.py         {ratio('a_ours', 'a_bt'):8.2f}x")
    print("\nsame data, same rules (final equity, trades):")
    for key in ("a_ours", "a_vbt", "c_ours", "a_bt", "b_ours", "b_vbt"):
        item = t[key]
        print(f"  {item.case:<6} {item.engine:<20} {item.final_equity:>18,.6f} {item.trades:>8,}")
    gap = abs(t["a_ours"].final_equity / t["a_vbt"].final_equity - 1.0)
    print(f"  (a) ours vs vectorbt final equity: relative difference {gap:.2e}")
    print("  (backtesting.py buys whole units; (b) vectorbt sizes 1% of cash, ours 1% of equity)")
    print(
        f"\npeak memory, ours on (a), fresh process (maxrss): {memory['peak_mb']:.0f} MB "
        f"(VmHWM {memory['vm_hwm_mb']:.0f} MB; {memory['before_run_mb']:.0f} MB before the run: Python, "
        "imports, data)   target < 600 MB"
    )


if __name__ == "__main__":
    sys.exit(main())
