"""Closed trades as columns (`TradeTable`), and the `Trade` models and UTC datetimes built from them.

Models are built in C when the extension is built, else in Python.

The engine computes every value itself, so validation is skipped: each model is `Trade.__new__` with its
field dict and pydantic's three other slots set directly (what `model_construct` ends with, without its
per-call overhead). `backtest_core._trades` (built by `pip install libs/core`) does the same in C;
`trades_python` and `datetimes_python` are the reference and the fallback, and give equal models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel

from backtest_core.native import load
from backtest_core.trade import Trade

_KEYS = tuple(Trade.model_fields)  # symbol, side, units, entry_time, ..., bars_held
# One set for all trades, as pydantic's own: model_copy(update=...) copies it before adding to it.
_FIELDS = set(_KEYS)
_SIDES = ("long", "short")
# The instance slots pydantic reads besides __dict__ (their C-level setters: no lookup per trade).
_SLOTS = tuple(
    BaseModel.__dict__[name]
    for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


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
    """Return one `Trade` per row (C builder if available, else `trades_python`; equal models)."""
    if _NATIVE is None:
        return trades_python(cols)
    stamps = _Stamps.of(cols)
    i64 = np.int64
    codes = (
        np.ascontiguousarray(cols.symbol, i64),
        np.where(cols.long, 0, 1).astype(i64),
        np.ascontiguousarray(cols.reason, i64),
        stamps.entry,
        stamps.exit,
    )
    f64 = np.float64
    values = tuple(
        np.ascontiguousarray(v, f64)
        for v in (cols.units, cols.entry_price, cols.exit_price, cols.pnl, cols.return_pct, cols.fees)
    )
    lookups = (cols.symbols, _SIDES, cols.reasons, tuple(stamps.stamps))
    held = np.ascontiguousarray(cols.bars_held, i64)
    out: list[Trade] = _NATIVE.build(Trade, _KEYS, _FIELDS, _SLOTS, lookups, codes, values, held)
    return out


def trades_python(cols: TradeTable) -> list[Trade]:
    """Return one `Trade` per row, built in Python (the reference of the C builder)."""
    names = np.array(cols.symbols, dtype=object)[cols.symbol]
    sides = np.where(cols.long, "long", "short").astype(object)
    reasons = np.array(cols.reasons, dtype=object)[cols.reason]
    stamps = _Stamps.of(cols)
    entry_dt = [stamps.stamps[i] for i in stamps.entry.tolist()]
    exit_dt = [stamps.stamps[i] for i in stamps.exit.tolist()]
    new, fields = Trade.__new__, _FIELDS
    set_dict = BaseModel.__dict__["__dict__"].__set__
    set_fields, set_extra, set_private = (slot.__set__ for slot in _SLOTS)
    out: list[Trade] = []
    append = out.append
    for sym, side, units, et, ep, xt, xp, why, p, r, f, h in zip(
        names.tolist(),
        sides.tolist(),
        cols.units.tolist(),
        entry_dt,
        cols.entry_price.tolist(),
        exit_dt,
        cols.exit_price.tolist(),
        reasons.tolist(),
        cols.pnl.tolist(),
        cols.return_pct.tolist(),
        cols.fees.tolist(),
        cols.bars_held.tolist(),
        strict=True,
    ):
        obj = new(Trade)
        set_dict(
            obj,
            {
                "symbol": sym,
                "side": side,
                "units": units,
                "entry_time": et,
                "entry_price": ep,
                "exit_time": xt,
                "exit_price": xp,
                "exit_reason": why,
                "pnl": p,
                "return_pct": r,
                "fees": f,
                "bars_held": h,
            },
        )
        set_fields(obj, fields)
        set_extra(obj, None)
        set_private(obj, None)
        append(obj)
    return out


def utc_datetimes(ns: np.ndarray) -> list[datetime]:
    """Return int64 epoch nanoseconds as UTC datetimes (floored to microseconds), in C if built."""
    if _NATIVE is None:
        return datetimes_python(ns)
    out: list[datetime] = _NATIVE.datetimes(np.ascontiguousarray(ns, np.int64), UTC)
    return out


def datetimes_python(ns: np.ndarray) -> list[datetime]:
    """Return int64 epoch nanoseconds as UTC datetimes with pandas (the reference of the C version)."""
    return list(pd.to_datetime(ns, unit="ns", utc=True).to_pydatetime())


_NATIVE = load("_trades")
