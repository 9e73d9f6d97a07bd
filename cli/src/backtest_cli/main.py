"""Entry point of `backtest`: each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# module name -> the subcommands it registers (each module has `register(subparsers)`), imported lazily
# so that `backtest run` never imports HTTP or database clients.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "backtest_cli.run": ("run",),
    "backtest_cli.sweep": ("sweep",),
    "backtest_cli.walkforward": ("walkforward",),
    "backtest_cli.ingest": ("ingest", "fetch"),
    "backtest_cli.remote": ("submit", "status", "results", "cancel", "list"),
    "backtest_cli.token": ("token",),
    "backtest_cli.users": ("user",),
    "backtest_cli.strategies": ("strategy",),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser; with `only`, import just the module that owns that subcommand."""
    parser = argparse.ArgumentParser(prog="backtest", description="Backtest crypto strategies.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name, commands in COMMAND_MODULES.items():
        if only is not None and only not in commands:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    known = {command for commands in COMMAND_MODULES.values() for command in commands}
    parser = build_parser(only=first if first in known else None)
    args = parser.parse_args(args_list)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
