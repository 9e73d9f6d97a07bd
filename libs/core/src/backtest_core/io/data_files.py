"""Read candle files as published: Binance kline CSV (spot, futures, ms or us times) and plain OHLCV CSV.

Every reader takes either a path (``str`` or ``os.PathLike``; a ``.zip`` holding one CSV is opened
transparently) or the file's raw ``bytes``, and returns `Candles`. Parsing runs in pandas' C reader;
Python only walks the lines to name the first bad one once a file has already failed. A malformed row
raises `DataError` naming the file and its 1-based line number. In kline files every row must have
exactly 12 fields; the six stored ones (open time, OHLC, volume) must be numbers (finite, >= 0).
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from backtest_core.errors import DataError
from backtest_core.model.candles import COLUMNS, INTERVAL_NS, SYMBOL_PATTERN, Candles

Source = str | os.PathLike[str] | bytes
LineCheck = Callable[[str], "str | None"]

# The 12 columns of a Binance kline row, in file order (also the header of futures / newer files).
KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
OHLCV_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")

# Open times at or above this are microseconds (spot files since 2025-01-01), below it milliseconds.
# 1e14 ms is the year 5138 and 1e14 us is 1973, so the two ranges never overlap for real data.
MICROSECONDS_THRESHOLD = 100_000_000_000_000
NS_PER_MS = 1_000_000
NS_PER_US = 1_000

_FILENAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]{2,30})-(?P<interval>\d+[smhdwM])(?:-(?P<date>\d{4}(?:-\d{2}){0,2}))?"
    r"\.(?:csv|zip)$"
)


# A looser name whose first dash-separated part is the symbol, e.g. ``BTCUSD-1h-coinbase.csv``.
_LOOSE_PREFIX = re.compile(r"^(?P<symbol>[A-Z0-9]{2,30})-")
# The field of a kline row holding close_time (read as text: some exports leave it out or zero it).
CLOSE_TIME_FIELD = KLINE_COLUMNS.index("close_time")


class MissingNameError(DataError):
    """The symbol or interval is neither given nor derivable; `what` names which ("symbol"/"interval")."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def symbol_and_interval_from_filename(name: str | os.PathLike[str]) -> tuple[str, str]:
    """Return (symbol, interval) from a Binance archive name like ``BTCUSDT-1h-2024-01.csv``.

    Accepts monthly (``-YYYY-MM``) and daily (``-YYYY-MM-DD``) names, ``.csv`` or ``.zip``, and a bare
    ``BTCUSDT-1h.csv``; any directory part is ignored.
    """
    base = Path(name).name
    match = _FILENAME.match(base)
    if match is None:
        raise DataError(
            f"file name must look like SYMBOL-INTERVAL[-YYYY-MM[-DD]].csv|zip "
            f"(e.g. BTCUSDT-1h-2024-01.csv), was {base!r}"
        )
    interval = match["interval"]
    if interval not in INTERVAL_NS:
        raise DataError(f"{base}: interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}")
    return match["symbol"], interval


def read_source(source: Source) -> tuple[bytes, str]:
    """Return (raw CSV bytes, display name); a path ending in ``.zip`` yields its single CSV member."""
    if isinstance(source, bytes):
        return source, "<bytes>"
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if path.suffix.lower() != ".zip":
        return data, str(path)
    return csv_from_zip(data, str(path))


def csv_from_zip(data: bytes, name: str) -> tuple[bytes, str]:
    """Return (bytes, "archive.zip:member.csv") of the one CSV inside a Binance archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(f"{name}: expected exactly one .csv inside the zip, found {members}")
            return archive.read(members[0]), f"{name}:{members[0]}"
    except zipfile.BadZipFile as error:
        raise DataError(f"{name}: not a valid zip archive ({error})") from None


def read_binance_klines(
    source: Source, *, symbol: str | None = None, interval: str | None = None, name: str | None = None
) -> Candles:
    """Read a Binance kline CSV (12 columns, optional header, ms or us open times) into `Candles`.

    `symbol` and `interval` default to the ones in the file name (a strict Binance name, or a
    ``SYMBOL-...`` prefix for the symbol); without one the interval is inferred from the data
    (`interval_of_klines`). `name` overrides the name used in messages (and for the default
    symbol/interval) when `source` is bytes.
    """
    data, display = read_source(source)
    display = name or display
    symbol, named_interval = _resolve_names(display, symbol, interval)
    body, header_lines = _strip_header(data, display, expected=KLINE_COLUMNS)
    if not body:
        return _empty(symbol, named_interval or "1d")
    # Only the six stored columns are converted (half the parse time); every row must still have
    # exactly 12 fields, checked by counting commas in C before parsing.
    rows = body.count(b"\n") + 1
    if body.count(b",") != rows * (len(KLINE_COLUMNS) - 1):
        raise _locate_error(body, display, header_lines, _kline_line_problem)
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            names=list(range(len(KLINE_COLUMNS))),
            usecols=[*range(1 + len(COLUMNS)), CLOSE_TIME_FIELD],
            dtype={0: np.int64, **{i: np.float64 for i in range(1, 1 + len(COLUMNS))}, CLOSE_TIME_FIELD: str},
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        raise _locate_error(body, display, header_lines, _kline_line_problem) from None
    values = frame.iloc[:, 1 : 1 + len(COLUMNS)].to_numpy(dtype=np.float64)
    _check_finite(values, display, header_lines, body, _kline_line_problem)
    raw_time = frame[0].to_numpy(dtype=np.int64)
    open_time = _to_ns(raw_time, display, header_lines)
    interval = named_interval or interval_of_klines(raw_time, frame[CLOSE_TIME_FIELD], open_time, display)
    prices = {c: np.ascontiguousarray(frame[i + 1].to_numpy(dtype=np.float64)) for i, c in enumerate(COLUMNS)}
    return _build(symbol, interval, open_time, prices, display, header_lines)


def read_ohlcv_csv(
    source: Source, *, symbol: str | None = None, interval: str | None = None, name: str | None = None
) -> Candles:
    """Read a CSV with header ``timestamp,open,high,low,close,volume`` (ISO-8601 or epoch ms) into `Candles`.

    Naive ISO-8601 times are taken as UTC. Without `interval` and without one in the file name, the
    interval is inferred from the most common spacing between rows.
    """
    data, display = read_source(source)
    display = name or display
    body, header_lines = _strip_header(data, display, expected=OHLCV_COLUMNS, required=True)
    symbol = symbol or _symbol_from_name(display)
    if not body:
        return _empty(symbol, interval or "1d")
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            names=list(range(len(OHLCV_COLUMNS))),
            usecols=list(range(len(OHLCV_COLUMNS))),
            dtype={0: str, **{i: np.float64 for i in range(1, len(OHLCV_COLUMNS))}},
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        raise _locate_error(body, display, header_lines, _ohlcv_line_problem) from None
    _check_finite(
        frame.iloc[:, 1:].to_numpy(dtype=np.float64), display, header_lines, body, _ohlcv_line_problem
    )
    open_time = _parse_timestamps(frame[0], display, header_lines)
    prices = {c: np.ascontiguousarray(frame[i + 1].to_numpy(dtype=np.float64)) for i, c in enumerate(COLUMNS)}
    if interval is None:
        interval = _interval_from_name(display) or infer_interval(open_time, display)
    return _build(symbol, interval, open_time, prices, display, header_lines)


def read_candle_file(source: Source, *, symbol: str | None = None, interval: str | None = None) -> Candles:
    """Read either format, chosen by the first line (``timestamp,...`` header means plain OHLCV)."""
    data, display = read_source(source)
    first = data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip().lower()
    if first.startswith(b"timestamp"):
        return read_ohlcv_csv(data, symbol=symbol, interval=interval, name=display)
    return read_binance_klines(data, symbol=symbol, interval=interval, name=display)


def infer_interval(open_time: np.ndarray, name: str = "<candles>") -> str:
    """Return the Binance interval code equal to the most common spacing of `open_time` (int64 ns).

    Gaps (missing bars) do not change it; a tie is broken towards the smaller spacing.
    """
    if len(open_time) < 2:
        raise MissingNameError(
            "interval", f"{name}: cannot infer the interval from {len(open_time)} row(s); pass the interval"
        )
    steps, counts = np.unique(np.diff(open_time), return_counts=True)
    step = int(steps[int(np.argmax(counts))])
    code = _interval_of_length(step)
    if code is None:
        raise MissingNameError(
            "interval",
            f"{name}: the most common spacing between rows is {step / 1e9:g} s, which is no Binance "
            f"interval ({', '.join(INTERVAL_NS)}); pass the interval",
        )
    return code


def interval_of_klines(raw_open: np.ndarray, close_field: pd.Series, open_ns: np.ndarray, name: str) -> str:
    """Return the interval of kline rows: close_time - open_time + 1 unit, else the open-time spacing.

    `raw_open` are the file's open times (ms or us, as `close_field`), `open_ns` the same in ns.
    """
    close = pd.to_numeric(close_field, errors="coerce").to_numpy(dtype=np.float64)
    if len(close) and bool(np.isfinite(close).all()):
        lengths, counts = np.unique(close.astype(np.int64) - raw_open + 1, return_counts=True)
        length = int(lengths[int(np.argmax(counts))])
        unit = NS_PER_US if int(raw_open[0]) >= MICROSECONDS_THRESHOLD else NS_PER_MS
        code = _interval_of_length(length * unit)
        if code is not None:
            return code
    return infer_interval(open_ns, name)


def _interval_of_length(length_ns: int) -> str | None:
    for code, length in INTERVAL_NS.items():
        if length == length_ns:
            return code
    return None


# --- helpers -------------------------------------------------------------------------------------


def _resolve_names(display: str, symbol: str | None, interval: str | None) -> tuple[str, str | None]:
    """Return (symbol, interval or None when neither given nor in the file name: infer it from the data)."""
    if symbol is None or interval is None:
        base = Path(display.rsplit(":", 1)[-1]).name
        try:
            file_symbol, file_interval = symbol_and_interval_from_filename(base)
        except DataError as error:
            file_interval = None
            prefix = _LOOSE_PREFIX.match(base)
            if symbol is None and prefix is None:
                raise MissingNameError("symbol", f"{error}; or pass the symbol") from None
            file_symbol = prefix["symbol"] if prefix else ""
        symbol = symbol or file_symbol
        interval = interval or file_interval
    if not SYMBOL_PATTERN.match(symbol):
        raise DataError(f"symbol must be 2-30 upper-case letters or digits, was {symbol!r}")
    if interval is not None and interval not in INTERVAL_NS:
        raise DataError(f"interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}")
    return symbol, interval


def _symbol_from_name(display: str) -> str:
    base = Path(display.rsplit(":", 1)[-1]).name
    try:
        return symbol_and_interval_from_filename(base)[0]
    except DataError:
        stem = re.sub(r"[^A-Z0-9]", "", Path(base).stem.upper().split("-")[0])
        if not SYMBOL_PATTERN.match(stem):
            raise DataError(f"{display}: cannot derive a symbol from the file name; pass it") from None
        return stem


def _interval_from_name(display: str) -> str | None:
    try:
        return symbol_and_interval_from_filename(Path(display.rsplit(":", 1)[-1]).name)[1]
    except DataError:
        return None


def _strip_header(
    data: bytes, display: str, *, expected: tuple[str, ...], required: bool = False
) -> tuple[bytes, int]:
    """Return (body without BOM, header and trailing blank lines, number of header lines: 0 or 1)."""
    data = data.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n\t ")
    if not data:
        return b"", 0
    first, _, rest = data.partition(b"\n")
    first_text = first.strip().decode("utf-8", "replace")
    has_header = not (first_text[:1].isdigit() or first_text[:1] == "-")
    if not has_header:
        if required:
            raise DataError(
                f"{display}: line 1: expected the header {','.join(expected)}, was {first_text!r}"
            )
        return data, 0
    names = tuple(part.strip().lower() for part in first_text.split(","))
    if names[: len(expected)] != expected:
        raise DataError(f"{display}: line 1: expected the header {','.join(expected)}, was {first_text!r}")
    return rest, 1


def _lines(body: bytes) -> list[str]:
    return body.decode("utf-8", "replace").split("\n")


def _kline_line_problem(line: str) -> str | None:
    """Describe what is wrong with one kline row, or None if it parses."""
    fields = line.split(",")
    if len(fields) != len(KLINE_COLUMNS):
        return f"expected {len(KLINE_COLUMNS)} comma-separated fields, found {len(fields)} in {line[:120]!r}"
    try:
        int(fields[0])
    except ValueError:
        return f"open_time must be an integer, was {fields[0]!r}"
    return _number_problem(KLINE_COLUMNS[1:], fields[1:])


def _ohlcv_line_problem(line: str) -> str | None:
    """Describe what is wrong with one OHLCV row (the timestamp is checked later), or None."""
    fields = line.split(",")
    if len(fields) < len(OHLCV_COLUMNS):
        return f"expected {len(OHLCV_COLUMNS)} comma-separated fields, found {len(fields)} in {line[:120]!r}"
    return _number_problem(OHLCV_COLUMNS[1:], fields[1 : len(OHLCV_COLUMNS)])


def _number_problem(columns: tuple[str, ...], fields: list[str]) -> str | None:
    for column, field in zip(columns, fields, strict=True):
        try:
            value = float(field)
        except ValueError:
            return f"{column} must be a number, was {field!r}"
        if not math.isfinite(value) or value < 0:
            return f"{column} must be a finite number >= 0, was {field!r}"
    return None


def _locate_error(body: bytes, display: str, header_lines: int, problem: LineCheck) -> DataError:
    """Walk the lines (slow, only after a failed fast parse) and describe the first malformed one."""
    for index, raw in enumerate(_lines(body)):
        message = problem(raw.rstrip("\r"))
        if message is not None:
            return DataError(f"{display}: line {index + 1 + header_lines}: {message}")
    return DataError(f"{display}: could not parse the file as CSV")


def _check_finite(
    values: np.ndarray, display: str, header_lines: int, body: bytes, problem: LineCheck
) -> None:
    """Reject empty, NaN or infinite fields (pandas reads a missing field as NaN) and negative numbers."""
    bad = ~np.isfinite(values) | (values < 0)
    if bool(bad.any()):
        row = int(np.argmax(bad.any(axis=1)))
        line = _lines(body)[row].rstrip("\r")
        message = problem(line) or f"expected finite numbers >= 0 in every field, was {line[:120]!r}"
        raise DataError(f"{display}: line {row + 1 + header_lines}: {message}")


def _to_ns(raw: np.ndarray, display: str, header_lines: int) -> np.ndarray:
    """Convert per-file ms or us epoch open times to ns, requiring one unit for the whole file."""
    micro = raw >= MICROSECONDS_THRESHOLD
    if bool(micro[0]):
        other = np.flatnonzero(~micro)
        unit, factor = "microseconds", NS_PER_US
    else:
        other = np.flatnonzero(micro)
        unit, factor = "milliseconds", NS_PER_MS
    if other.size:
        row = int(other[0])
        raise DataError(
            f"{display}: line {row + 1 + header_lines}: open_time {int(raw[row])} is not in {unit} like "
            f"line {1 + header_lines} ({int(raw[0])}); a file must use one unit"
        )
    negative = np.flatnonzero(raw < 0)
    if negative.size:
        row = int(negative[0])
        raise DataError(
            f"{display}: line {row + 1 + header_lines}: open_time must be >= 0, was {int(raw[row])}"
        )
    return raw * factor


def _parse_timestamps(column: pd.Series, display: str, header_lines: int) -> np.ndarray:
    text = column.astype(str).str.strip()
    if bool(text.str.fullmatch(r"\d+").all()):
        milliseconds: np.ndarray = text.astype(np.int64).to_numpy()
        return milliseconds * NS_PER_MS
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if missing.size:
        row = int(missing[0])
        raise DataError(
            f"{display}: line {row + 1 + header_lines}: timestamp must be ISO-8601 or epoch milliseconds, "
            f"was {text.iloc[row]!r}"
        )
    nanoseconds: np.ndarray = pd.DatetimeIndex(parsed).as_unit("ns").asi8.astype(np.int64)
    return nanoseconds


def _build(
    symbol: str,
    interval: str,
    open_time: np.ndarray,
    prices: dict[str, np.ndarray],
    display: str,
    header_lines: int,
) -> Candles:
    if len(open_time) > 1:
        steps = np.diff(open_time)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            row = int(bad[0]) + 1
            kind = "duplicates" if steps[bad[0]] == 0 else "is earlier than"
            raise DataError(
                f"{display}: line {row + 1 + header_lines}: open times must strictly increase; this row "
                f"{kind} the previous one"
            )
    return Candles(
        symbol=symbol, interval=interval, open_time=np.ascontiguousarray(open_time, dtype=np.int64), **prices
    )


def _empty(symbol: str, interval: str) -> Candles:
    empty = np.empty(0, dtype=np.float64)
    return Candles(
        symbol=symbol,
        interval=interval,
        open_time=np.empty(0, dtype=np.int64),
        **{c: empty.copy() for c in COLUMNS},
    )
