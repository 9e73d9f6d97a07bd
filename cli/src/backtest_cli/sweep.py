"""`backtest sweep`: search a strategy's parameters on local candle files, on every core of this machine.

Exit codes as `backtest run`: 0 done (whatever the trials' states), 2 bad input naming the option.
Output: a table of the best trials and the overfitting statistics, or with `--json` the contract shared
with the platform: {"trials": [...], "best": {...}, "overfitting": {"pbo", "deflated_sharpe", "psr",
"trials"}, ...}; `--returns FILE.csv` writes each successful trial's per-bar returns (column `time`,
ISO-8601 UTC of the bar a return ends on, then one column per trial id).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from backtest_core.candles import Candles
from backtest_core.errors import BacktestError
from backtest_research.overfitting import PBO_SPLITS_DEFAULT
from backtest_research.space import ParamSpace, SpaceError
from backtest_research.sweep import Objective, SweepResult, plan_trials, run_sweep
from backtest_research.tpe import run_tpe

from backtest_cli.config_options import UsageError, add_config_options
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.run import EXIT_BAD_INPUT, EXIT_OK, build_config

TABLE_ROWS = 10  # best trials shown in the table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sweep` subcommand to the `backtest` parser."""
    parser = subparsers.add_parser(
        "sweep",
        help="search a strategy's parameters on local candle files, on every core",
        description="Run one backtest per parameter combination on local candle files (no services), "
        "rank them by an objective and report whether the winner is luck (PBO, deflated Sharpe).",
    )
    add_search_options(parser)
    parser.add_argument("--pbo-splits", type=int, default=PBO_SPLITS_DEFAULT,
                        help=f"blocks of the CSCV for PBO, even (default {PBO_SPLITS_DEFAULT})")  # fmt: skip
    parser.add_argument("--returns", type=Path, metavar="FILE.csv", help="write every trial's returns")
    parser.set_defaults(handler=handle)


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The options `backtest sweep` and `backtest walkforward` share: data, strategy, space, objective."""
    parser.add_argument("--data", action="extend", nargs="+", required=True, metavar="PATH",
                        help="candle files, folders or globs, as in backtest run")  # fmt: skip
    parser.add_argument("--symbol", help="symbol of every --data file (default: from the file name)")
    parser.add_argument("--interval", help="bar interval like 1m, 1h, 1d (default: from the data)")
    parser.add_argument("--strategy", default="sma_cross", help="as in backtest run (default sma_cross)")
    parser.add_argument(
        "--grid", action="append", default=[], metavar="NAME=VALUES", required=True,
        help="a parameter to search, repeatable: a list 30,50,100; a range start:stop:step (stop included "
        "when a step lands on it); for random search also int:LOW:HIGH, float:LOW:HIGH, log:LOW:HIGH, "
        "cat:a,b,c",
    )  # fmt: skip
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a fixed strategy parameter; repeatable")  # fmt: skip
    parser.add_argument("--method", choices=("grid", "random", "tpe"), default="grid",
                        help="grid, seeded random or Bayesian (Optuna TPE); default grid")  # fmt: skip
    parser.add_argument("--trials", type=int, help="trials of a random or TPE search")
    parser.add_argument("--seed", type=int, default=0, help="seed of a random or TPE search (default 0)")
    parser.add_argument("--objective", default="sharpe", help="METRIC[:max|min] (default sharpe:max)")
    parser.add_argument("--min-trades", type=int, default=0, help="trades a trial needs to be best")
    parser.add_argument("--workers", type=int, help="processes (default: every core)")
    add_config_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")


def handle(args: argparse.Namespace) -> int:
    """Run the sweep the options describe; print it; return the exit code."""
    try:
        if args.pbo_splits < 2 or args.pbo_splits % 2:
            raise UsageError(f"option --pbo-splits: an even number >= 2, was {args.pbo_splits}")
        space = ParamSpace.parse(args.grid)
        objective = Objective.parse(args.objective, args.min_trades)
        planned = plan_trials(
            space, "random" if args.method == "tpe" else args.method, args.trials, args.seed
        )
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        base = build_config(args, loaded)
        candles = {name: item.candles for name, item in loaded.items()}
        with _progress(len(planned), enabled=not args.no_progress) as advance:
            if args.method == "tpe":
                result = run_tpe(
                    base, candles, space, objective, args.trials, args.seed, workers=args.workers,
                    pbo_splits=args.pbo_splits, on_trials=advance,
                )  # fmt: skip
            else:
                result = run_sweep(
                    base, candles, planned, objective, workers=args.workers, pbo_splits=args.pbo_splits,
                    on_trials=advance,
                )  # fmt: skip
    except (UsageError, SpaceError, BacktestError) as error:
        print(f"backtest sweep: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.returns is not None:
        write_returns(args.returns, result, candles)
    print(json.dumps(result.as_json(), allow_nan=False) if args.json else sweep_text(result))
    return EXIT_OK


def bar_times(candles: dict[str, Candles]) -> np.ndarray:
    """The open times (ns) of the union of the symbols' bars: the equity curve's grid."""
    return np.unique(np.concatenate([c.open_time for c in candles.values()]))


def write_returns(path: Path, result: SweepResult, candles: dict[str, Candles]) -> None:
    """Write the successful trials' per-bar returns, one column per trial id, a row per bar."""
    done = [t for t in result.trials if t.state == "SUCCESS" and t.returns is not None]
    times = bar_times(candles)[1:]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", *(str(t.id) for t in done)])
        for row, ns in enumerate(times):
            stamp = datetime.fromtimestamp(int(ns) / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([stamp, *(repr(float(t.returns[row])) for t in done if t.returns is not None)])


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_text(result: SweepResult) -> str:
    """The counts, the best trials by the objective and the overfitting statistics, as a table."""
    objective = result.objective
    ranked = sorted(
        (t for t in result.trials if t.metrics and objective.score(t.metrics) is not None),
        key=lambda t: -(objective.score(t.metrics or {}) or 0.0),
    )
    counts = result.counts()
    lines = [
        f"Trials {counts['total']}: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['skipped']} skipped; objective {objective.metric} "
        f"{'max' if objective.maximize else 'min'}, at least {objective.min_trades} trades",
        f"{'id':>5}  {'params':<40} {objective.metric:>14} {'final_equity':>16} {'trades':>7}",
    ]
    for trial in ranked[:TABLE_ROWS]:
        metrics = trial.metrics or {}
        params = " ".join(f"{k}={v}" for k, v in trial.params.items())
        lines.append(
            f"{trial.id:>5}  {params:<40} {_shown(metrics.get(objective.metric)):>14} "
            f"{metrics['final_equity']:>16,.2f} {metrics['trade_count']:>7}"
        )
    stats = result.overfitting
    lines.append(
        f"Overfitting over {stats['trials']} trials: PBO {_shown(stats['pbo'])} "
        f"({stats['pbo_splits']} splits), deflated Sharpe {_shown(stats['deflated_sharpe'])}, "
        f"PSR {_shown(stats['psr'])}"
    )
    for trial in result.trials:
        if trial.state == "FAILURE":
            lines.append(f"trial {trial.id} failed: {trial.reason}")
    return "\n".join(lines)


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Any]:
    """A tqdm bar of finished trials on stderr (only on a terminal)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, file=sys.stderr, disable=None, delay=1.0, leave=False, unit="trial") as bar:
        yield bar.update
