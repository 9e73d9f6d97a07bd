"""A run's trades and per-bar equity for `backtest run`: JSON rows, `--trades FILE.csv`, `--equity FILE.csv`.

Times are ISO-8601 UTC (`2017-01-05T00:00:00Z`), as in the platform's results; numbers are written with
all their digits (Python's repr), so a CSV reads back to the very floats the engine computed.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
from backtest_core.model.config import SourceStrategy, StrategySpec
from backtest_core.model.trade import Trade
from backtest_core.model.trade_log import TradeLog
from backtest_core.strategy.loader import load_strategy_class

TRADE_COLUMNS = (*Trade.model_fields, "open")
EQUITY_COLUMNS = ("time", "equity")


class EquityRecorder:
    """Keep the whole per-bar equity curve the engine hands to `run_backtest(on_equity=...)`."""

    def __init__(self) -> None:
        self.times_ns = np.zeros(0, np.int64)
        self.equity = np.zeros(0, np.float64)

    def __call__(self, times_ns: np.ndarray, equity: np.ndarray) -> None:
        self.times_ns, self.equity = times_ns, equity

    def rows(self) -> list[dict[str, Any]]:
        """Return one `{"time", "equity"}` per bar: equity at the bar's close, the bar's open time."""
        times = iso_times(self.times_ns)
        return [{"time": t, "equity": v} for t, v in zip(times, self.equity.tolist(), strict=True)]


def iso_times(ns: np.ndarray) -> list[str]:
    """Return epoch nanoseconds as ISO-8601 UTC strings to the second (bars start on whole seconds)."""
    return [
        t + "Z"
        for t in np.datetime_as_string(np.asarray(ns, np.int64).astype("datetime64[ns]"), unit="s").tolist()
    ]


def trade_rows(trades: TradeLog) -> list[dict[str, Any]]:
    """Return every trade as a JSON-ready dict with `Trade`'s fields and `open`, in closing order.

    `open` is true for a position still open after the last bar (`exit_reason` "end_of_data"): its
    exit is the mark at the last close, it is in the equity and `open_trades`, not in the trade statistics.
    """
    rows = []
    for trade in trades:
        row = trade.model_dump(mode="json")
        row["open"] = trade.exit_reason == "end_of_data"
        rows.append(row)
    return rows


def write_trades_csv(path: Path, trades: TradeLog) -> None:
    """Write one row per trade, columns named as `Trade`'s fields, and say where on stderr."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, TRADE_COLUMNS)
        writer.writeheader()
        for row in trade_rows(trades):
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    print(f"{len(trades)} trades written to {path}", file=sys.stderr)


def write_equity_csv(path: Path, curve: EquityRecorder) -> None:
    """Write `time,equity` for every bar and say where on stderr."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EQUITY_COLUMNS)
        for row in curve.rows():
            writer.writerow([row["time"], repr(row["equity"])])
    print(f"{len(curve.equity)} equity points written to {path}", file=sys.stderr)


def file_strategy_label(path_text: str, spec: StrategySpec) -> str | None:
    """Name a strategy read from a file or package: `file.py:ClassName v<first 8 hex of its SHA-256>`.

    The version is a fingerprint of the code (entry module and helpers), so two runs show the same `v`
    exactly when they ran the same code. None for specs not read from a file.
    """
    if not isinstance(spec, SourceStrategy):
        return None
    class_name = spec.class_name or load_strategy_class(spec).__name__
    digest = hashlib.sha256(spec.source.encode())
    for name in sorted(spec.files):
        digest.update(f"\0{name}\0{spec.files[name]}".encode())
    named = spec.class_name is not None and path_text.endswith(f":{spec.class_name}")
    path = path_text.rsplit(":", 1)[0] if named else path_text
    return f"{Path(path).name}:{class_name} v{digest.hexdigest()[:8]}"
