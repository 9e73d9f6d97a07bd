"""A trade table packed into one string: how results carry their trades between the platform's services.

A result's trades as JSON objects take ~300 bytes each; a finished result travels as one NATS message and
is stored as one MongoDB document (MAX_RESULT_BYTES), which would cap a backtest at ~45,000 trades. Packed
(the table's columns as little-endian binary, zlib level 1, base64) a trade takes ~60 bytes. Values are
kept exactly: floats bit for bit, times in epoch nanoseconds.

Layout: PREFIX + base64(zlib(header JSON + b"\\n" + the columns in `COLUMNS` order)); the header holds
the row count and the symbols and reasons tuples the codes index.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib

import numpy as np

from backtest_core.model.trade_rows import TradeTable

PREFIX = "tradelog1:"
# (column, dtype on the wire), in wire order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("symbol", "<i4"),
    ("long", "|u1"),
    ("reason", "|u1"),
    ("entry_ns", "<i8"),
    ("exit_ns", "<i8"),
    ("units", "<f8"),
    ("entry_price", "<f8"),
    ("exit_price", "<f8"),
    ("pnl", "<f8"),
    ("return_pct", "<f8"),
    ("fees", "<f8"),
    ("bars_held", "<i8"),
)


class PackError(ValueError):
    """A string that is not a packed trade table (says what was wrong)."""


def pack(table: TradeTable) -> str:
    """Return the table as one ASCII string (see the module docstring for the layout)."""
    header = json.dumps({"rows": len(table), "symbols": table.symbols, "reasons": table.reasons})
    parts = [header.encode(), b"\n"]
    parts += [np.ascontiguousarray(getattr(table, name), dtype).tobytes() for name, dtype in COLUMNS]
    return PREFIX + base64.b64encode(zlib.compress(b"".join(parts), 1)).decode("ascii")


def is_packed(value: object) -> bool:
    """Return True if `value` is a string in the packed format (by its prefix)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def unpack(text: str) -> TradeTable:
    """Return the table packed in `text`; PackError if it is not one."""
    if not is_packed(text):
        raise PackError(f"a packed trade log starts with {PREFIX!r}, got {text[:20]!r}")
    try:
        raw = zlib.decompress(base64.b64decode(text[len(PREFIX) :], validate=True))
    except (binascii.Error, zlib.error) as exc:
        raise PackError(f"the packed trade log is damaged: {exc}") from None
    head, _, body = raw.partition(b"\n")
    try:
        header = json.loads(head)
        rows, symbols, reasons = int(header["rows"]), tuple(header["symbols"]), tuple(header["reasons"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PackError(f"the packed trade log has a bad header: {exc!r}") from None
    width = sum(np.dtype(dtype).itemsize for _, dtype in COLUMNS)
    if len(body) != rows * width:
        expected = rows * width
        raise PackError(f"the packed trade log has {len(body)} bytes for {rows} trades, expected {expected}")
    columns, at = {}, 0
    for name, dtype in COLUMNS:
        size = rows * np.dtype(dtype).itemsize
        columns[name] = np.frombuffer(body, dtype, rows, at).astype(dtype.replace("<", "="))
        at += size
    columns["long"] = columns["long"].astype(bool)
    _check_codes(columns["symbol"], len(symbols), "symbol")
    _check_codes(columns["reason"], len(reasons), "reason")
    return TradeTable(symbols=symbols, reasons=reasons, **columns)


def _check_codes(codes: np.ndarray, count: int, name: str) -> None:
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= count):
        raise PackError(f"the packed trade log has {name} codes outside [0, {count})")
