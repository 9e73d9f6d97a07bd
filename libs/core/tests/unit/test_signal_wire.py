"""The strategy process's pipe format: signals round-trip exactly, anything else is a WireError."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from backtest_core.errors import ConfigError, StrategyLoadError, StrategyRuntimeError
from backtest_core.sandbox.signal_wire import (
    MAX_MESSAGE,
    MAX_TRACEBACK,
    Decided,
    Progressed,
    WireError,
    error_frame,
    progress_frame,
    read_frame,
    signals_frame,
)
from backtest_core.strategy import SignalArrays


def _stream(*frames: bytes | list[bytes | memoryview]) -> io.BytesIO:
    data = b""
    for frame in frames:
        data += frame if isinstance(frame, bytes) else b"".join(bytes(p) for p in frame)
    return io.BytesIO(data)


def _read(stream: io.BytesIO, bars: list[int], decided: set[int] | None = None) -> object:
    return read_frame(stream, bars, (decided or set()).__contains__)


def _signals(n: int) -> SignalArrays:
    rng = np.random.default_rng(3)
    side = rng.integers(-1, 2, n).astype(np.int8)
    prices = np.where(side != 0, rng.uniform(90, 110, n), np.nan)
    return SignalArrays(side, prices, prices * 1.05, prices * 0.97, rng.uniform(0, 1, n))


def test_full_signal_arrays_come_back_equal_bit_for_bit() -> None:
    sent = _signals(1000)

    frame = _read(_stream(signals_frame(1, sent)), [10, 1000])

    assert isinstance(frame, Decided) and frame.symbol == 1
    for name in ("side", "entry_price", "take_profit", "stop_loss", "confidence"):
        np.testing.assert_array_equal(getattr(frame.signals, name), getattr(sent, name))
    assert frame.signals.side.dtype == np.int8 and frame.signals.confidence.dtype == np.float64


def test_market_signals_travel_as_one_value_per_price_array() -> None:
    side = np.zeros(100_000, np.int8)
    side[::7] = 1
    parts = signals_frame(0, SignalArrays.market(side))

    size = sum(len(bytes(p)) for p in parts)
    frame = _read(_stream(parts), [100_000])

    # 5-byte header + 4-byte index + 100,000 sides + 4 x (1 form byte + 1 float64) = 100,045 bytes
    assert size == 5 + 4 + 100_000 + 4 * 9
    assert isinstance(frame, Decided)
    np.testing.assert_array_equal(frame.signals.side, side)
    assert np.isnan(frame.signals.take_profit).all() and (frame.signals.confidence == 1.0).all()


def test_progress_and_errors_round_trip_with_their_type_and_bounded_text() -> None:
    runtime = StrategyRuntimeError("boom " + "x" * 20_000, "Traceback\n" + "y" * 200_000)
    stream = _stream(
        progress_frame(0, 0.25),
        error_frame(ConfigError("fast must be < slow, was fast=30, slow=10")),
        error_frame(StrategyLoadError("no strategy class")),
        error_frame(runtime),
    )

    progress = _read(stream, [5])
    config, load, run = _read(stream, [5]), _read(stream, [5]), _read(stream, [5])

    assert progress == Progressed(0, 0.25)
    assert isinstance(config, ConfigError) and str(config) == "fast must be < slow, was fast=30, slow=10"
    assert isinstance(load, StrategyLoadError) and str(load) == "no strategy class"
    assert isinstance(run, StrategyRuntimeError)
    assert len(str(run)) == MAX_MESSAGE and str(run).startswith("boom x")
    assert len(run.traceback_text) == MAX_TRACEBACK and run.traceback_text.endswith("y")
    assert _read(stream, [5]) is None  # a clean end


def _header(kind: int, size: int) -> bytes:
    return struct.pack("<BI", kind, size)


# SIGNALS for 3 bars: 4 (index) + 3 (sides) + 4 x (1 + 8) = 43 bytes at least,
# 4 + 3 + 4 x (1 + 24) = 107 at most.
# ERROR: 6 header bytes + at most 4 UTF-8 bytes per character of 10,000 + 100,000 = 440,006.
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"type": "result"}', "frame kind must be one of [1, 2, 3], was 123"),
        (_header(1, 12) + struct.pack("<Id", 0, 1.5), "progress fraction must be in [0, 1], was 1.5"),
        (
            _header(1, 12) + struct.pack("<Id", 0, float("nan")),
            "progress fraction must be in [0, 1], was nan",
        ),
        (_header(1, 12) + struct.pack("<Id", 2, 0.5), "symbol index must be below 1, was 2"),
        (_header(1, 13) + b"\0" * 13, "PROGRESS frame must be 12 bytes, was 13"),
        (
            _header(2, 1 << 31) + struct.pack("<I", 0),
            "SIGNALS frame for 3 bars must be 43..107 bytes, was 2147483648",
        ),
        (_header(3, 1 << 30), "ERROR frame must be 6..440006 bytes, was 1073741824"),
        (_header(3, 8) + struct.pack("<BBI", 3, 1, 2) + b"\xff\xfe", "ERROR frame text must be UTF-8"),
        (_header(3, 6) + struct.pack("<BBI", 9, 0, 0), "error code must be one of [1, 2, 3], was 9"),
        (_header(1, 12) + b"\0" * 3, "the stream ended inside a frame (3 of 12 bytes)"),
        (b"\x01\x00", "the stream ended inside a frame header (2 of 5 bytes)"),
    ],
)
def test_a_malformed_frame_is_a_wire_error_saying_what_was_expected(data: bytes, message: str) -> None:
    with pytest.raises(WireError) as caught:
        _read(io.BytesIO(data), [3])

    assert str(caught.value).startswith(message)


def test_a_side_outside_minus_one_to_one_is_a_wire_error() -> None:
    parts = signals_frame(0, SignalArrays.empty(3))
    data = b"".join(bytes(p) for p in parts)
    forged = data[:9] + b"\x00\x05\x00" + data[12:]  # side of bar 1 set to 5

    with pytest.raises(WireError, match="signal side must be -1, 0 or \\+1, was 5"):
        _read(io.BytesIO(forged), [3])


def test_signals_sent_twice_for_one_symbol_are_a_wire_error() -> None:
    with pytest.raises(WireError, match="signals of symbol 0 were sent twice"):
        _read(_stream(signals_frame(0, SignalArrays.empty(3))), [3], decided={0})


def test_a_strategy_side_that_is_not_minus_one_zero_or_one_is_a_config_error_when_sent() -> None:
    with pytest.raises(ConfigError, match="signal side must be -1, 0 or \\+1 \\(int8\\), was dtype float64"):
        signals_frame(0, SignalArrays(np.array([0.5, 1.0]), *([np.full(2, np.nan)] * 3), np.ones(2)))
