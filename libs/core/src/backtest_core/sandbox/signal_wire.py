"""The fixed binary format the strategy process sends to the sandbox entry over its pipe.

A frame is a header `<kind u8><payload length u32>` (little endian) and the payload:

- PROGRESS: `<symbol index u32><fraction f64>`, the share of that symbol's bars decided, in [0, 1];
- SIGNALS: `<symbol index u32>`, then `side` as n int8 values (-1, 0, +1), then `entry_price`,
  `take_profit`, `stop_loss`, `confidence`, each `<form u8>` followed by n float64 values (form 0) or
  by one float64 that every bar shares (form 1, a broadcast array such as `SignalArrays.market`);
- ERROR: `<error code u8><has traceback u8><message bytes u32>`, the UTF-8 message, the UTF-8
  traceback (the rest).

The reader knows every symbol's bar count, so it never allocates more than the frame it expects, and
anything else (an unknown kind, a wrong length, a side outside -1..+1, bad UTF-8, a symbol sent twice)
is a `WireError`. Nothing is unpickled.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np

from backtest_core.errors import BacktestError, ConfigError, StrategyLoadError, StrategyRuntimeError
from backtest_core.strategy import SignalArrays

MAX_MESSAGE = 10_000  # characters of an error message
MAX_TRACEBACK = 100_000  # characters of a traceback
_HEADER = struct.Struct("<BI")
_PROGRESS = struct.Struct("<Id")
_INDEX = struct.Struct("<I")
_ERROR = struct.Struct("<BBI")
_F64 = struct.Struct("<d")
_FLOAT_FIELDS = ("entry_price", "take_profit", "stop_loss", "confidence")
_FULL, _CONSTANT = 0, 1


class ByteStream(Protocol):
    """A blocking binary reader (an `io.BufferedReader` over the pipe)."""

    def read(self, size: int, /) -> bytes:
        """Return up to `size` bytes, fewer only at the end of the stream."""

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill `buffer` from the stream; return how many bytes were read (0 at the end)."""


class Kind(IntEnum):
    """What a frame carries."""

    PROGRESS = 1
    SIGNALS = 2
    ERROR = 3


class ErrorCode(IntEnum):
    """Which engine error the strategy process raised."""

    CONFIG = 1
    STRATEGY_LOAD = 2
    STRATEGY_RUNTIME = 3


class WireError(BacktestError):
    """The strategy process sent something that is not a valid frame."""


# --- writing (the strategy process) -------------------------------------------------------------------


def progress_frame(symbol: int, fraction: float) -> bytes:
    """Return a PROGRESS frame: `fraction` of symbol number `symbol`'s bars are decided."""
    return _HEADER.pack(Kind.PROGRESS, _PROGRESS.size) + _PROGRESS.pack(symbol, fraction)


def signals_frame(symbol: int, signals: SignalArrays) -> list[bytes | memoryview]:
    """Return the parts of a SIGNALS frame (large arrays as views, not copies).

    Raises ConfigError when `side` holds a value other than -1, 0 or +1.
    """
    side = np.asarray(signals.side)
    side8 = side.astype(np.int8)
    if side.dtype != np.int8 and not np.array_equal(side8, side):
        raise ConfigError(f"signal side must be -1, 0 or +1 (int8), was dtype {side.dtype}")
    _check_side(side8)
    parts: list[bytes | memoryview] = [_INDEX.pack(symbol), np.ascontiguousarray(side8).data]
    for name in _FLOAT_FIELDS:
        values = np.asarray(getattr(signals, name), dtype=np.float64)
        if values.ndim == 1 and len(values) > 1 and values.strides == (0,):
            parts += [bytes([_CONSTANT]), _F64.pack(float(values[0]))]
        else:
            parts += [bytes([_FULL]), np.ascontiguousarray(values).data]
    size = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
    return [_HEADER.pack(Kind.SIGNALS, size), *parts]


def error_frame(exc: BaseException, traceback_text: str | None = None) -> bytes:
    """Return an ERROR frame for an engine error (anything else counts as the strategy's runtime error)."""
    if isinstance(exc, ConfigError):
        code, tb = ErrorCode.CONFIG, traceback_text
    elif isinstance(exc, StrategyLoadError):
        code, tb = ErrorCode.STRATEGY_LOAD, traceback_text
    else:
        code = ErrorCode.STRATEGY_RUNTIME
        tb = exc.traceback_text if isinstance(exc, StrategyRuntimeError) else traceback_text
    message = str(exc)[:MAX_MESSAGE].encode("utf-8", errors="replace")
    trace = b"" if tb is None else tb[-MAX_TRACEBACK:].encode("utf-8", errors="replace")
    head = _ERROR.pack(code, tb is not None, len(message))
    return _HEADER.pack(Kind.ERROR, len(head) + len(message) + len(trace)) + head + message + trace


# --- reading (the sandbox entry) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progressed:
    """A PROGRESS frame."""

    symbol: int
    fraction: float


@dataclass(frozen=True, slots=True)
class Decided:
    """A SIGNALS frame."""

    symbol: int
    signals: SignalArrays


Frame = Progressed | Decided | BacktestError


def read_frame(stream: ByteStream, bars: Sequence[int], decided: Callable[[int], bool]) -> Frame | None:
    """Read one frame; return None at a clean end of stream.

    `bars[i]` is symbol i's bar count; `decided(i)` says whether its signals already arrived. An ERROR
    frame is returned as the engine error it names (ConfigError, StrategyLoadError, StrategyRuntimeError).
    """
    header = stream.read(_HEADER.size)
    if not header:
        return None
    if len(header) != _HEADER.size:
        raise WireError(f"the stream ended inside a frame header ({len(header)} of {_HEADER.size} bytes)")
    kind, size = _HEADER.unpack(header)
    if kind == Kind.PROGRESS:
        return _progress(_read(stream, _expect(size, _PROGRESS.size, "PROGRESS")), bars)
    if kind == Kind.SIGNALS:
        return _signals(stream, size, bars, decided)
    if kind == Kind.ERROR:
        return _error(stream, size)
    raise WireError(f"frame kind must be one of {[int(k) for k in Kind]}, was {kind}")


def _progress(payload: bytes, bars: Sequence[int]) -> Progressed:
    symbol, fraction = _PROGRESS.unpack(payload)
    _check_symbol(symbol, bars)
    if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
        raise WireError(f"progress fraction must be in [0, 1], was {fraction!r}")
    return Progressed(symbol, fraction)


def _signals(stream: ByteStream, size: int, bars: Sequence[int], decided: Callable[[int], bool]) -> Decided:
    if size < _INDEX.size:
        raise WireError(f"SIGNALS frame must be at least {_INDEX.size} bytes, was {size}")
    (symbol,) = _INDEX.unpack(_read(stream, _INDEX.size))
    _check_symbol(symbol, bars)
    if decided(symbol):
        raise WireError(f"signals of symbol {symbol} were sent twice")
    n = bars[symbol]
    least = _INDEX.size + n + len(_FLOAT_FIELDS) * (1 + 8)
    most = _INDEX.size + n + len(_FLOAT_FIELDS) * (1 + 8 * n)
    if not least <= size <= most:
        raise WireError(f"SIGNALS frame for {n} bars must be {least}..{most} bytes, was {size}")
    side = _array(stream, n, np.int8)
    _check_side(side)
    left = size - _INDEX.size - n
    floats: list[np.ndarray] = []
    for name in _FLOAT_FIELDS:
        form = _read(stream, 1)[0]
        if form == _CONSTANT and left >= 9:
            (value,) = _F64.unpack(_read(stream, 8))
            floats.append(np.broadcast_to(np.float64(value), (n,)))
            left -= 9
        elif form == _FULL and left >= 1 + 8 * n:
            floats.append(_array(stream, n, np.float64))
            left -= 1 + 8 * n
        else:
            raise WireError(f"{name}: form must be 0 (full) or 1 (constant) within the frame, was {form}")
    if left != 0:
        raise WireError(f"SIGNALS frame has {left} bytes after its last array")
    return Decided(symbol, SignalArrays(side, *floats))


def _error(stream: ByteStream, size: int) -> BacktestError:
    most = _ERROR.size + 4 * (MAX_MESSAGE + MAX_TRACEBACK)
    if not _ERROR.size <= size <= most:
        raise WireError(f"ERROR frame must be {_ERROR.size}..{most} bytes, was {size}")
    code, has_traceback, message_bytes = _ERROR.unpack(_read(stream, _ERROR.size))
    if message_bytes > size - _ERROR.size or has_traceback not in (0, 1):
        raise WireError(f"ERROR frame header is inconsistent: message {message_bytes} of {size} bytes")
    try:
        message = _read(stream, message_bytes).decode("utf-8")[:MAX_MESSAGE]
        trace = _read(stream, size - _ERROR.size - message_bytes).decode("utf-8")[-MAX_TRACEBACK:]
    except UnicodeDecodeError as exc:
        raise WireError(f"ERROR frame text must be UTF-8: {exc}") from None
    if code == ErrorCode.CONFIG:
        return ConfigError(message)
    if code == ErrorCode.STRATEGY_LOAD:
        return StrategyLoadError(message)
    if code == ErrorCode.STRATEGY_RUNTIME:
        return StrategyRuntimeError(message, trace if has_traceback else "")
    raise WireError(f"error code must be one of {[int(c) for c in ErrorCode]}, was {code}")


def _check_side(side: np.ndarray) -> None:
    if len(side) and (int(side.min()) < -1 or int(side.max()) > 1):
        bad = int(side[np.flatnonzero((side < -1) | (side > 1))[0]])
        raise WireError(f"signal side must be -1, 0 or +1, was {bad}")


def _check_symbol(symbol: int, bars: Sequence[int]) -> None:
    if symbol >= len(bars):
        raise WireError(f"symbol index must be below {len(bars)}, was {symbol}")


def _expect(size: int, expected: int, kind: str) -> int:
    if size != expected:
        raise WireError(f"{kind} frame must be {expected} bytes, was {size}")
    return size


def _array(stream: ByteStream, n: int, dtype: type[np.generic]) -> np.ndarray:
    out = np.empty(n, dtype)
    view = out.data.cast("B")
    got = 0
    while got < len(view):
        read = stream.readinto(view[got:])
        if not read:
            raise WireError(f"the stream ended inside an array ({got} of {len(view)} bytes)")
        got += read
    return out


def _read(stream: ByteStream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise WireError(f"the stream ended inside a frame ({len(data)} of {size} bytes)")
    return data
