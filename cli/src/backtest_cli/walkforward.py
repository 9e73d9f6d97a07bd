"""`backtest walkforward`: walk-forward validation on local candle files (no services).

Each fold sweeps the train window (the options of `backtest sweep`), and its best params trade the test
window, warmed up on the bars before it, with the equity carried from fold to fold. Output: a fold
table and the stitched out-of-sample metrics, or with `--json` {"folds": [{"train": {"start", "end"},
"test": {"start", "end"}, "params", "in_sample", "out_of_sample"}], "oos": {"metrics", "equity"},
"efficiency"} (times ISO-8601 UTC, ends exclusive, as --start/--end take them).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from backtest_core.errors import BacktestError
from backtest_research.space import ParamSpace, SpaceError
from backtest_research.sweep import Objective, plan_trials
from backtest_research.walkforward import parse_length, plan_folds, run_walkforward
from backtest_research.walkforward_stitch import WalkForward

from backtest_cli.config_options import UsageError
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.run import EXIT_BAD_INPUT, EXIT_OK, build_config
from backtest_cli.sweep import add_search_options, bar_times


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `walkforward` subcommand to the `backtest` parser."""
    parser = subparsers.add_parser(
        "walkforward",
        help="walk-forward validation of a parameter search on local candle files",
        description="Sweep each fold's train window, trade its test window with the best params (equity "
        "carried from fold to fold) and report the stitched out-of-sample result.",
    )
    add_search_options(parser)
    parser.add_argument("--train", required=True, help="train window: bars (500) or a duration (365d)")
    parser.add_argument("--test", required=True, help="test window: bars or a duration")
    parser.add_argument("--step", help="bars or a duration between folds (default: --test)")
    parser.add_argument("--anchored", action="store_true", help="every train window starts at the first bar")
    parser.add_argument("--gap", default="0", help="bars or a duration between train and test (purge)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the walk-forward the options describe; print it; return the exit code."""
    try:
        if args.method == "tpe":
            raise UsageError("option --method: walkforward takes grid or random (tpe: backtest sweep)")
        space = ParamSpace.parse(args.grid)
        objective = Objective.parse(args.objective, args.min_trades)
        planned = plan_trials(space, args.method, args.trials, args.seed)
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        base = build_config(args, loaded)
        candles = {name: item.candles for name, item in loaded.items()}
        bars = len(bar_times(candles))
        length = {
            name: parse_length(getattr(args, name), base.interval, f"--{name}")
            for name in ("train", "test", "gap")
        }
        step = parse_length(args.step, base.interval, "--step") if args.step else None
        folds = plan_folds(
            bars, length["train"], length["test"], step, anchored=args.anchored, gap=length["gap"]
        )
        result = run_walkforward(base, candles, planned, objective, folds, workers=args.workers)
    except (UsageError, SpaceError, BacktestError) as error:
        print(f"backtest walkforward: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(result.as_json(), allow_nan=False) if args.json else walkforward_text(result))
    return EXIT_OK


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def walkforward_text(result: WalkForward) -> str:
    """One row per fold (windows, params, in- and out-of-sample Sharpe and return), then the totals."""
    lines = [
        f"{'fold':>4}  {'test window':<42} {'params':<28} {'IS sharpe':>9} {'OOS sharpe':>10} {'OOS %':>8}"
    ]
    for number, fold in enumerate(result.folds):
        window = f"{fold.window['test']['start']} .. {fold.window['test']['end']}"
        params = " ".join(f"{k}={v}" for k, v in (fold.params or {}).items()) or "(no eligible trial)"
        is_sharpe = (fold.in_sample or {}).get("sharpe")
        oos = fold.out_of_sample or {}
        lines.append(
            f"{number:>4}  {window:<42} {params:<28} {_shown(is_sharpe):>9} "
            f"{_shown(oos.get('sharpe')):>10} {_shown(oos.get('total_return_pct')):>8}"
        )
    m = result.oos_metrics
    lines.append(
        f"Out of sample, stitched: return {_shown(m.get('total_return_pct'))}%, "
        f"CAGR {_shown(m.get('cagr_pct'))}%, "
        f"Sharpe {_shown(m.get('sharpe'))}, max drawdown {_shown(m.get('max_drawdown_pct'))}%; "
        f"walk-forward efficiency {_shown(result.efficiency)}"
    )
    return "\n".join(lines)
