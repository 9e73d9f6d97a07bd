"""Closed trades as columns (`TradeTable`), and the `Trade` models and UTC datetimes built from them.

Models are made only when someone reads them (`TradeLog`), by pydantic's validation of one dict per
row (`TypeAdapter(list[Trade])`, in pydantic-core: faster than `model_construct` per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from pydantic import TypeAdapter

from backtest_core.gc_pause import gc_paused
from backtest_core.model.trade import Trade

_TRADES = TypeAdapter(list[Trade])


@dataclass(frozen=True, slots=True)
class TradeTable:
    """Closed trades as columns: codes index `symbols` and `reasons`; times in epoch ns; prices in quote."""

    symbols: tuple[str, ...]
    reasons: tuple[str, ...]
    symbol: np.ndarray  # int64 index into symbols
    long: np.ndarray  # bool: direction > 0
    reason: np.ndarray  # int index into reasons
    entry_ns: np.ndarray  # int64 epoch nanoseconds (UTC)
    exit_ns: np.ndarray
    units: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    return_pct: np.ndarray
    fees: np.ndarray
    bars_held: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.symbol)

    def take(self, rows: slice | np.ndarray) -> TradeTable:
        """Return the table of these rows (a slice or an index array), same lookups."""
        columns = {name: getattr(self, name)[rows] for name in _ROW_COLUMNS}
        return TradeTable(symbols=self.symbols, reasons=self.reasons, **columns)


_ROW_COLUMNS = tuple(f for f in TradeTable.__dataclass_fields__ if f not in ("symbols", "reasons"))


@dataclass(frozen=True, slots=True)
class _Stamps:
    """The table's distinct times as datetimes (trades share bars: each is converted once)."""

    stamps: list[datetime]
    entry: np.ndarray  # int64 index into stamps, per trade
    exit: np.ndarray

    @classmethod
    def of(cls, cols: TradeTable) -> _Stamps:
        k = len(cols)
        times, where = np.unique(np.concatenate((cols.entry_ns, cols.exit_ns)), return_inverse=True)
        where = where.astype(np.int64, copy=False)
        return cls(utc_datetimes(times), where[:k], where[k:])


def build_trades(cols: TradeTable) -> list[Trade]:
    """Return one validated `Trade` per row."""
    names = np.array(cols.symbols, dtype=object)[cols.symbol].tolist()
    sides = np.where(cols.long, "long", "short").tolist()
    reasons = np.array(cols.reasons, dtype=object)[cols.reason].tolist()
    stamps = _Stamps.of(cols)
    at = stamps.stamps
    columns = zip(
        names,
        sides,
        cols.units.tolist(),
        stamps.entry.tolist(),
        cols.entry_price.tolist(),
        stamps.exit.tolist(),
        cols.exit_price.tolist(),
        reasons,
        cols.pnl.tolist(),
        cols.return_pct.tolist(),
        cols.fees.tolist(),
        cols.bars_held.tolist(),
        strict=True,
    )
    with gc_paused():  # only acyclic dicts and models are made
        rows = [
            {
                "symbol": sym,
                "side": side,
                "units": units,
                "entry_time": at[et],
                "entry_price": ep,
                "exit_time": at[xt],
                "exit_price": xp,
                "exit_reason": why,
                "pnl": p,
                "return_pct": r,
                "fees": f,
                "bars_held": h,
            }
            for sym, side, units, et, ep, xt, xp, why, p, r, f, h in columns
        ]
        trades: list[Trade] = _TRADES.validate_python(rows)
    return trades


def utc_datetimes(ns: np.ndarray) -> list[datetime]:
    """Return int64 epoch nanoseconds as UTC datetimes (floored to microseconds), without pandas."""
    micros = np.asarray(ns, np.int64).astype("datetime64[ns]").astype("datetime64[us]")
    naive: list[datetime] = micros.tolist()
    return [moment.replace(tzinfo=UTC) for moment in naive]
