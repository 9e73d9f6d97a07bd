"""`backtest run`: run one backtest on local candle files, without any service.

Exit codes: 0 success; 2 bad input (an option, a data file, the strategy cannot be loaded), with one
message on stderr naming the option or the file and line; 1 the strategy raised while running.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backtest_core.config import (
    BacktestConfig,
    FeeModel,
    ModuleStrategy,
    ParamValue,
    SourceStrategy,
    StrategySpec,
)
from backtest_core.engine import run_backtest
from backtest_core.errors import BacktestError, StrategyRuntimeError
from pydantic import ValidationError

from backtest_cli.local_data import LoadedSymbol, load_symbols, resolve_paths
from backtest_cli.run_report import result_json, summary_text

EXIT_OK, EXIT_STRATEGY_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EQUITY_POINTS = 1_000  # the curve is not printed; metrics always use every bar

# BacktestConfig field -> the option that sets it, to name the option in validation errors.
OPTION_OF_FIELD = {
    "strategy": "--strategy",
    "params": "--param",
    "symbols": "--symbol/--data",
    "interval": "--interval",
    "start": "--start",
    "end": "--end",
    "cash": "--cash",
    "fees": "--fee",
    "slippage_bps": "--slippage-bps",
    "fill": "--fill",
    "size": "--size",
    "allow_short": "--allow-short",
    "parallel_symbols": "--parallel",
}
_INT = re.compile(r"^[+-]?\d+$")


class UsageError(Exception):
    """An option value is malformed; the message names the option."""


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
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="starting cash, quote currency")
    parser.add_argument(
        "--fee",
        type=float,
        default=None,
        help="fee per fill, fraction of notional (0.001 = 0.1%%; default Binance's 0.001)",
    )
    parser.add_argument("--fill", choices=("next_open", "close"), default="next_open", help="fill price")
    parser.add_argument("--size", type=float, default=1.0, help="fraction of equity per new position")
    parser.add_argument("--slippage-bps", type=float, default=0.0, help="adverse price move per fill, bps")
    parser.add_argument("--allow-short", action="store_true", help="let SELL signals open short positions")
    parser.add_argument("--start", help="first bar's open time, ISO-8601 (UTC if no offset), inclusive")
    parser.add_argument("--end", help="end of the run, ISO-8601 (UTC if no offset), exclusive")
    parser.add_argument("--parallel", type=int, default=1, metavar="N", help="threads generating proposals")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the backtest described by the parsed options; print the result; return the exit code."""
    try:
        loaded = load_symbols(resolve_paths(args.data), symbol=args.symbol, interval=args.interval)
        config = build_config(args, loaded)
        candles = {name: item.candles for name, item in loaded.items()}
        with _progress(enabled=not args.no_progress) as on_progress:
            result = run_backtest(config, candles, on_progress=on_progress, equity_points_max=EQUITY_POINTS)
    except StrategyRuntimeError as error:
        print(f"backtest run: the strategy failed: {error}\n{error.traceback_text}", file=sys.stderr)
        return EXIT_STRATEGY_FAILED
    except (UsageError, BacktestError) as error:
        print(f"backtest run: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(result_json(result, loaded), allow_nan=False))
    else:
        print(summary_text(result, loaded))
    return EXIT_OK


def build_config(args: argparse.Namespace, loaded: dict[str, LoadedSymbol]) -> BacktestConfig:
    """Turn the options into a `BacktestConfig`; raise `UsageError` naming the option that is wrong."""
    intervals = {item.candles.interval for item in loaded.values()}
    fields: dict[str, Any] = {
        "strategy": parse_strategy(args.strategy),
        "params": parse_params(args.param),
        "symbols": sorted(loaded),
        "interval": intervals.pop(),
        "start": parse_time(args.start, "--start"),
        "end": parse_time(args.end, "--end"),
        "cash": args.cash,
        "slippage_bps": args.slippage_bps,
        "fill": args.fill,
        "size": args.size,
        "allow_short": args.allow_short,
        "parallel_symbols": args.parallel,
    }
    if args.fee is not None:
        try:
            fields["fees"] = FeeModel(maker=args.fee, taker=args.fee)
        except ValidationError as error:
            raise UsageError(_describe(error, option="--fee")) from None
    try:
        return BacktestConfig(**fields)
    except ValidationError as error:
        raise UsageError(_describe(error)) from None


def parse_params(pairs: list[str]) -> dict[str, ParamValue]:
    """Parse repeated `--param KEY=VALUE`: integers, then floats, then true/false, else text."""
    params: dict[str, ParamValue] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"option --param: expected KEY=VALUE with KEY a name like fast, was {pair!r}")
        if key in params:
            raise UsageError(f"option --param: {key} given twice, was {params[key]!r} and {text!r}")
        params[key] = _param_value(text.strip())
    return params


def _param_value(text: str) -> ParamValue:
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_strategy(text: str) -> StrategySpec:
    """Read `--strategy`: a built-in name, `module:Class`, or a Python file `path.py[:Class]`."""
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


def parse_time(text: str | None, option: str) -> datetime | None:
    """Parse an ISO-8601 date or time; without an offset it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        expected = "ISO-8601 like 2019-01-01 or 2019-01-01T12:00Z"
        raise UsageError(f"option {option}: expected {expected}, was {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _describe(error: ValidationError, option: str | None = None) -> str:
    """Say which option is wrong, what was expected and what it was."""
    messages = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        named = option or OPTION_OF_FIELD.get(field, field or "--start/--end")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f", was {value!r}"
        text = str(item["msg"]).removeprefix("Value error, ")
        messages.append(f"option {named}: {text}{shown}")
    return "; ".join(messages)


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
