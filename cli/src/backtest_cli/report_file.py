"""`--report out.html` of `backtest run` and `backtest results`: write the self-contained HTML report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backtest_core.io.report_html import render_report
from backtest_core.model.results import BacktestResult


def add_report_option(parser: argparse.ArgumentParser) -> None:
    """Add `--report PATH` to `parser`."""
    parser.add_argument(
        "--report", type=Path, metavar="OUT.html", help="also write a self-contained HTML report to this file"
    )


def write_report(
    path: Path, result: BacktestResult, *, title: str, data: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Write the report of `result` to `path` (UTF-8) and say where on stderr."""
    path.write_text(render_report(result, title=title, data=data), encoding="utf-8")
    print(f"report written to {path}", file=sys.stderr)
