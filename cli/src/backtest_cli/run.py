"""`backtest run`: run one backtest on local candle files, without any service.

Exit codes: 0 success; 2 bad input (an option, a data file, the strategy cannot be loaded), with one
message on stderr naming the option or the file and line; 1 the strategy raised while running.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backtest_core.engine.run import run_backtest
from backtest_core.errors import BacktestError, StrategyRuntimeError
from backtest_core.model.config import BacktestConfig, ModuleStrategy, SourceStrategy, StrategySpec
from pydantic import ValidationError

from backtest_cli.config_options import (
    OPTION_OF_FIELD,
    UsageError,
    add_config_options,
    config_values,
    describe,
    parse_params,
    parse_time,
)
from backtest_cli.local_data import LoadedSymbol, load_symbols, resolve_paths
from backtest_cli.report_file import add_report_option, write_report
from backtest_cli.run_files import (
    EquityRecorder,
    file_strategy_label,
    trade_rows,
    write_equity_csv,
    write_trades_csv,
)
from backtest_cli.run_report import data_summary, result_json, summary_text
from backtest_cli.strategy_option import package_spec

EXIT_OK, EXIT_STRATEGY_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EQUITY_POINTS = 1_000  # the report's curve; --json and --equity get every bar, as the metrics do

# BacktestConfig field -> the option that sets it, to name the option in validation errors.
RUN_OPTION_OF_FIELD = {**OPTION_OF_FIELD, "symbols": "--symbol/--data"}
__all__ = ["UsageError", "build_config", "handle", "parse_params", "parse_strategy", "parse_time", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` subcommand to the `backtest` parser."""
    parser = subparsers.add_parser(
        "run",
        help="run a backtest on local candle files",
        description="Run a backtest on local Binance kline CSV or OHLCV CSV files, without any service.",
    )
    parser.add_argument(
        "--data",
        action="extend",
        nargs="+",
        required=True,
        metavar="PATH",
        help="Binance kline CSV/zip or OHLCV CSV files, folders (searched recursively) or globs; "
        "repeatable; files of one symbol are joined in time order",
    )
    parser.add_argument("--symbol", help="symbol of every --data file (default: from the file name)")
    parser.add_argument("--interval", help="bar interval like 1m, 1h, 1d (default: from the file name)")
    parser.add_argument(
        "--strategy",
        default="sma_cross",
        help="built-in name (default sma_cross), module:Class, or path/to/file.py[:Class]",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="strategy parameter; repeat it"
    )
    add_config_options(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of a table: metrics, settings, per-symbol, data, every trade "
        "and the equity at every bar",
    )
    parser.add_argument("--trades", type=Path, metavar="FILE.csv", help="also write every trade to this CSV")
    parser.add_argument(
        "--equity", type=Path, metavar="FILE.csv", help="also write the equity at every bar to this CSV"
    )
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    add_report_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the backtest described by the parsed options; print the result; return the exit code."""
    try:
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        config = build_config(args, loaded)
        candles = {name: item.candles for name, item in loaded.items()}
        curve = EquityRecorder()
        with _progress(enabled=not args.no_progress) as on_progress:
            result = run_backtest(
                config, candles, on_progress=on_progress, equity_points_max=EQUITY_POINTS, on_equity=curve
            )
    except StrategyRuntimeError as error:
        trace = f"\n{error.traceback_text}" if error.traceback_text else ""
        print(f"backtest run: the strategy failed: {error}{trace}", file=sys.stderr)
        return EXIT_STRATEGY_FAILED
    except (UsageError, BacktestError) as error:
        print(f"backtest run: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        document = {**result_json(result, loaded), "trades": trade_rows(result.trades)}
        print(json.dumps({**document, "equity_curve": curve.rows()}, allow_nan=False))
    else:
        print(summary_text(result, loaded, file_strategy_label(args.strategy, config.strategy)))
    if args.trades is not None:
        write_trades_csv(args.trades, result.trades)
    if args.equity is not None:
        write_equity_csv(args.equity, curve)
    if args.report is not None:
        write_report(args.report, result, title=f"backtest run: {args.strategy}", data=data_summary(loaded))
    return EXIT_OK


def build_config(args: argparse.Namespace, loaded: dict[str, LoadedSymbol]) -> BacktestConfig:
    """Turn the options into a `BacktestConfig`; raise `UsageError` naming the option that is wrong."""
    intervals = {item.candles.interval for item in loaded.values()}
    fields: dict[str, Any] = {
        "strategy": parse_strategy(args.strategy),
        "params": parse_params(args.param),
        "symbols": sorted(loaded),
        "interval": intervals.pop(),
        **config_values(args),
    }
    try:
        return BacktestConfig(**fields)
    except ValidationError as error:
        raise UsageError(describe(error, RUN_OPTION_OF_FIELD)) from None


def parse_strategy(text: str) -> StrategySpec:
    """Read `--strategy`: a built-in, `module:Class`, a file `path.py[:Class]` or a package folder/.zip."""
    try:
        package = package_spec(text)
    except (BacktestError, ValueError, OSError) as error:
        raise UsageError(f"option --strategy: {error}") from None
    if package is not None:
        return package
    path_text, _, class_name = text.partition(".py:")
    if text.endswith(".py") or class_name:
        path = Path(text if text.endswith(".py") else path_text + ".py")
        try:
            source = path.read_text()
        except OSError as error:
            raise UsageError(f"option --strategy: cannot read {path}: {error.strerror or error}") from None
        return SourceStrategy(source=source, class_name=class_name or None)
    module, sep, class_name = text.partition(":")
    if sep:
        if not module or not class_name:
            raise UsageError(f"option --strategy: expected module:Class, was {text!r}")
        return ModuleStrategy(module=module, class_name=class_name)
    return text


class _progress:
    """A tqdm bar on stderr fed by the engine's `on_progress(fraction, message)`; only on a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None

    def __enter__(self) -> Callable[[float, str], None] | None:
        if not self._enabled:
            return None
        from tqdm import tqdm

        # disable=None: show only when stderr is a terminal; delay: only runs longer than a second.
        self._bar = tqdm(
            total=1000,
            file=sys.stderr,
            disable=None,
            delay=1.0,
            leave=False,
            bar_format="{desc:<10} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        )
        return self._update

    def _update(self, fraction: float, message: str) -> None:
        self._bar.set_description_str(message[:40], refresh=False)
        self._bar.update(min(1000, max(0, int(fraction * 1000))) - self._bar.n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
