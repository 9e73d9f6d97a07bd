"""`backtest sweep`: search a strategy's parameters on local candle files, on every core of this machine;
with `--remote` on the platform (see backtest_cli.remote_sweep).

Exit codes as `backtest run`: 0 done (whatever the trials' states), 2 bad input naming the option
(`--remote`: as `backtest submit`, see remote_sweep).
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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from backtest_core.errors import BacktestError
from backtest_core.model.candles import Candles
from backtest_research.overfitting import PBO_SPLITS_DEFAULT
from backtest_research.space import ParamSpace, SpaceError, Value
from backtest_research.sweep import Objective, SweepResult, plan_trials, run_sweep
from backtest_research.tpe import run_tpe

from backtest_cli.config_options import UsageError, add_config_options
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.remote import _add_common
from backtest_cli.remote_sweep import handle_remote
from backtest_cli.run import EXIT_BAD_INPUT, EXIT_OK, build_config
from backtest_cli.sweep_output import sweep_text, trial_progress

# Options of a sweep on this machine that a sweep on the platform refuses, and why.
LOCAL_ONLY = {
    "data": ("--data", "the platform reads its own candles (name them with --symbols)"),
    "symbol": ("--symbol", "it names the symbol of --data files; the platform takes --symbols"),
    "returns": ("--returns", "the platform does not send the trials' per-bar returns"),
    "workers": ("--workers", "the platform's runners run the trials"),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sweep` subcommand to the `backtest` parser."""
    parser = subparsers.add_parser(
        "sweep",
        help="search a strategy's parameters on local candle files (every core), or on the platform",
        description="Run one backtest per parameter combination on local candle files (no services), "
        "or with --remote on the platform through its gateway; rank them by an objective and report "
        "whether the winner is luck (PBO, deflated Sharpe).",
    )
    add_search_options(parser, remote=True)
    parser.add_argument("--pbo-splits", type=int, default=PBO_SPLITS_DEFAULT,
                        help=f"blocks of the CSCV for PBO, even (default {PBO_SPLITS_DEFAULT})")  # fmt: skip
    parser.add_argument("--returns", type=Path, metavar="FILE.csv", help="write every trial's returns")
    parser.add_argument(
        "--remote", action="store_true", help="run it on the platform (needs --symbols, a token; no --data)"
    )
    parser.add_argument("--symbols", help="with --remote: comma-separated symbols, e.g. BTCUSD,ETHUSD")
    _add_common(parser)
    parser.set_defaults(handler=handle)


def add_search_options(parser: argparse.ArgumentParser, *, remote: bool = False) -> None:
    """The options `backtest sweep` and `backtest walkforward` share: data, strategy, space, objective.

    With `remote` (the command also runs on the platform) `--data` is checked by the command itself.
    """
    parser.add_argument("--data", action="extend", nargs="+", required=not remote, metavar="PATH",
                        help="candle files, folders or globs, as in backtest run")  # fmt: skip
    parser.add_argument("--symbol", help="symbol of every --data file (default: from the file name)")
    interval_default = "from the data; with --remote 1d" if remote else "from the data"
    parser.add_argument("--interval", help=f"bar interval like 1m, 1h, 1d (default: {interval_default})")
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
    """Run the sweep the options describe (here, or on the platform with --remote); print it."""
    try:
        check_where(args)
        space, objective, planned = parse_search(args)
        if args.remote:
            return handle_remote(args)
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        base = build_config(args, loaded)
        candles = {name: item.candles for name, item in loaded.items()}
        with trial_progress(len(planned), enabled=not args.no_progress) as advance:
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
    document = result.as_json()
    print(json.dumps(document, allow_nan=False) if args.json else sweep_text(document))
    return EXIT_OK


def check_where(args: argparse.Namespace) -> None:
    """Refuse the options that do not fit where the sweep runs (here or --remote), naming the option."""
    if args.remote:
        for dest, (flag, why) in LOCAL_ONLY.items():
            if getattr(args, dest) is not None:
                raise UsageError(f"option {flag}: not with --remote: {why}")
        if not args.symbols:
            raise UsageError("option --symbols: --remote needs the symbols to sweep, e.g. --symbols BTCUSD")
        return
    if not args.data:
        raise UsageError(
            "option --data: the candle files, folders or globs to sweep on are needed "
            "(or --remote to sweep on the platform's candles)"
        )
    if args.symbols is not None:
        raise UsageError("option --symbols: only with --remote (--symbol names the symbol of --data files)")


def parse_search(args: argparse.Namespace) -> tuple[ParamSpace, Objective, list[dict[str, Value]]]:
    """Read the space, the objective and the planned trials (for TPE: as many random draws) of the options."""
    if args.pbo_splits < 2 or args.pbo_splits % 2:
        raise UsageError(f"option --pbo-splits: an even number >= 2, was {args.pbo_splits}")
    space = ParamSpace.parse(args.grid)
    objective = Objective.parse(args.objective, args.min_trades)
    planned = plan_trials(space, "random" if args.method == "tpe" else args.method, args.trials, args.seed)
    return space, objective, planned


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
