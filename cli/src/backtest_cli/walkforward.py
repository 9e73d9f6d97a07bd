"""`backtest walkforward`: walk-forward validation on local candle files (no services).

Each fold sweeps the train window (the options of `backtest sweep`), and its best params trade the test
window, warmed up on the bars before it, with the equity carried from fold to fold. Output: a fold
table and the stitched out-of-sample metrics, or with `--json` {"folds": [{"train": {"start", "end"},
"test": {"start", "end"}, "params", "in_sample", "out_of_sample"}], "oos": {"metrics", "equity"},
"efficiency"} (times ISO-8601 UTC, ends exclusive, as --start/--end take them). The folds are planned
over the bars in [--start, --end). With `--remote` the platform runs it (see
backtest_cli.remote_walkforward), on its stored candles of `--symbols`, with the same output.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from backtest_core.errors import BacktestError
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_research.space import ParamSpace, SpaceError
from backtest_research.sweep import Objective, plan_trials
from backtest_research.walkforward import parse_length, plan_folds, run_walkforward

from backtest_cli.config_options import UsageError
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.remote import _add_common
from backtest_cli.remote_walkforward import handle_remote
from backtest_cli.run import EXIT_BAD_INPUT, EXIT_OK, build_config
from backtest_cli.sweep import LOCAL_ONLY, add_search_options, bar_times


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `walkforward` subcommand to the `backtest` parser."""
    parser = subparsers.add_parser(
        "walkforward",
        help="walk-forward validation of a parameter search on local candle files",
        description="Sweep each fold's train window, trade its test window with the best params (equity "
        "carried from fold to fold) and report the stitched out-of-sample result.",
    )
    add_search_options(parser, remote=True)
    parser.add_argument("--train", required=True, help="train window: bars (500) or a duration (365d)")
    parser.add_argument("--test", required=True, help="test window: bars or a duration")
    parser.add_argument("--step", help="bars or a duration between folds (default: --test)")
    parser.add_argument("--anchored", action="store_true", help="every train window starts at the first bar")
    parser.add_argument("--gap", default="0", help="bars or a duration between train and test (purge)")
    parser.add_argument(
        "--remote", action="store_true", help="run it on the platform (needs --symbols, a token; no --data)"
    )
    parser.add_argument("--symbols", help="with --remote: comma-separated symbols, e.g. BTCUSD,ETHUSD")
    _add_common(parser)
    parser.set_defaults(handler=handle)


def check_where(args: argparse.Namespace) -> None:
    """Refuse the options that do not fit where the walk-forward runs (here or --remote), naming them."""
    if args.remote:
        for dest, (flag, why) in LOCAL_ONLY.items():
            if getattr(args, dest, None) is not None:
                raise UsageError(f"option {flag}: not with --remote: {why}")
        if not args.symbols:
            raise UsageError("option --symbols: --remote needs the symbols, e.g. --symbols BTCUSD")
        return
    if not args.data:
        raise UsageError("option --data: the candle files, folders or globs are needed (or --remote)")
    if args.symbols is not None:
        raise UsageError("option --symbols: only with --remote (--symbol names the symbol of --data files)")


def handle(args: argparse.Namespace) -> int:
    """Run the walk-forward the options describe; print it; return the exit code."""
    try:
        check_where(args)
        if args.method == "tpe":
            raise UsageError("option --method: walkforward takes grid or random (tpe: backtest sweep)")
        space = ParamSpace.parse(args.grid)
        objective = Objective.parse(args.objective, args.min_trades)
        planned = plan_trials(space, args.method, args.trials, args.seed)
        if args.remote:
            return handle_remote(args, walkforward_text)
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        base = build_config(args, loaded)
        candles = {name: in_range(item.candles, base) for name, item in loaded.items()}
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
    document = result.as_json()
    print(json.dumps(document, allow_nan=False) if args.json else walkforward_text(document))
    return EXIT_OK


def in_range(candles: Candles, base: BacktestConfig) -> Candles:
    """The bars in [base.start, base.end): the data the folds are planned over."""
    if base.start is None and base.end is None:
        return candles
    start = None if base.start is None else int(base.start.timestamp()) * 1_000_000_000
    end = None if base.end is None else int(base.end.timestamp()) * 1_000_000_000
    return candles.between(start, end)


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def walkforward_text(result: dict[str, Any]) -> str:
    """One row per fold (windows, params, in- and out-of-sample Sharpe and return), then the totals, from
    the `--json` document (the local run's or the platform's)."""
    lines = [
        f"{'fold':>4}  {'test window':<42} {'params':<28} {'IS sharpe':>9} {'OOS sharpe':>10} {'OOS %':>8}"
    ]
    for number, fold in enumerate(result["folds"]):
        window = f"{fold['test']['start']} .. {fold['test']['end']}"
        params = " ".join(f"{k}={v}" for k, v in (fold["params"] or {}).items()) or "(no eligible trial)"
        is_sharpe = (fold["in_sample"] or {}).get("sharpe")
        oos = fold["out_of_sample"] or {}
        lines.append(
            f"{number:>4}  {window:<42} {params:<28} {_shown(is_sharpe):>9} "
            f"{_shown(oos.get('sharpe')):>10} {_shown(oos.get('total_return_pct')):>8}"
        )
    m = result["oos"]["metrics"]
    lines.append(
        f"Out of sample, stitched: return {_shown(m.get('total_return_pct'))}%, "
        f"CAGR {_shown(m.get('cagr_pct'))}%, "
        f"Sharpe {_shown(m.get('sharpe'))}, max drawdown {_shown(m.get('max_drawdown_pct'))}%; "
        f"walk-forward efficiency {_shown(result['efficiency'])}"
    )
    return "\n".join(lines)
