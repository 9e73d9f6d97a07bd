"""Readers of Binance kline CSV and plain OHLCV CSV, on real Bitstamp BTC/USD days of January 2019."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from backtest_core.errors import DataError
from backtest_core.io.data_files import (
    KLINE_COLUMNS,
    infer_interval,
    read_binance_klines,
    read_candle_file,
    read_ohlcv_csv,
    symbol_and_interval_from_filename,
)

pytestmark = pytest.mark.unit

SPOT_FILE = Path(__file__).parent / "data" / "BTCUSD-1d-2019-01.csv"
JAN_1_2019_NS = 1_546_300_800_000_000_000
DAY_NS = 86_400_000_000_000


@pytest.fixture
def spot_lines() -> list[str]:
    return SPOT_FILE.read_text().splitlines()


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def to_microseconds(line: str) -> str:
    fields = line.split(",")
    fields[0] = str(int(fields[0]) * 1000)
    fields[6] = str(int(fields[6]) * 1000)
    return ",".join(fields)


def test_spot_file_without_header_reads_31_daily_candles_in_nanoseconds() -> None:
    candles = read_binance_klines(SPOT_FILE)
    assert (candles.symbol, candles.interval, len(candles)) == ("BTCUSD", "1d", 31)
    assert candles.open_time[0] == JAN_1_2019_NS
    assert np.all(np.diff(candles.open_time) == DAY_NS)
    assert (candles.open[0], candles.high[0], candles.low[0], candles.close[0]) == (
        3693.3,
        3845.46,
        3629.66,
        3823.44,
    )
    assert candles.volume[0] == 5149.61
    assert candles.close[-1] == 3413.11


def test_futures_file_with_header_equals_spot_file(tmp_path: Path, spot_lines: list[str]) -> None:
    path = write(tmp_path / "BTCUSD-1d-2019-01.csv", [",".join(KLINE_COLUMNS), *spot_lines])
    with_header = read_binance_klines(path)
    plain = read_binance_klines(SPOT_FILE)
    assert len(with_header) == 31
    assert np.array_equal(with_header.open_time, plain.open_time)
    assert np.array_equal(with_header.close, plain.close)


def test_microsecond_open_times_give_the_same_nanoseconds_as_milliseconds(
    tmp_path: Path, spot_lines: list[str]
) -> None:
    path = write(tmp_path / "BTCUSD-1d-2025-01.csv", [to_microseconds(line) for line in spot_lines])
    micro = read_binance_klines(path)
    assert micro.open_time[0] == JAN_1_2019_NS
    assert np.array_equal(micro.open_time, read_binance_klines(SPOT_FILE).open_time)


def test_mixed_time_units_in_one_file_are_rejected_naming_the_line(
    tmp_path: Path, spot_lines: list[str]
) -> None:
    lines = list(spot_lines)
    lines[4] = to_microseconds(lines[4])
    path = write(tmp_path / "BTCUSD-1d-2019-01.csv", lines)
    with pytest.raises(DataError, match=r"BTCUSD-1d-2019-01\.csv: line 5: open_time .* not in milliseconds"):
        read_binance_klines(path)


def test_zip_archive_reads_its_single_csv(tmp_path: Path) -> None:
    archive = tmp_path / "BTCUSD-1d-2019-01.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(SPOT_FILE, "BTCUSD-1d-2019-01.csv")
    candles = read_binance_klines(archive)
    assert (candles.symbol, len(candles), candles.close[0]) == ("BTCUSD", 31, 3823.44)


def test_bytes_source_uses_the_given_name_for_symbol_and_interval() -> None:
    candles = read_binance_klines(SPOT_FILE.read_bytes(), name="ETHUSDT-1d-2019-01.csv")
    assert (candles.symbol, candles.interval, len(candles)) == ("ETHUSDT", "1d", 31)


def test_explicit_symbol_and_interval_override_the_file_name() -> None:
    candles = read_binance_klines(SPOT_FILE, symbol="XBTUSD", interval="1d")
    assert candles.symbol == "XBTUSD"


@pytest.mark.parametrize(
    ("line_index", "replacement", "message"),
    [
        (
            6,
            "1546819200000,4057.88,abc,3975.0,4030.0,5000.0,1546905599999,1.0,0,0,0,0",
            r"line 7: high must be",
        ),
        (2, "1546473600000,3885.87,3893.4,3760.0", r"line 3: expected 12 comma-separated fields, found 4"),
        (9, "1547078400000,1,2,3,4,5,6,7,8,9,10,11,12", r"line 10: expected 12 .* found 13"),
        (
            0,
            "x1546300800000,3693.3,3845.46,3629.66,3823.44,5149.61,1,1,0,0,0,0",
            r"line 1: expected the header",
        ),
        (
            3,
            "1546560000000,3787.81,,3700.0,3800.0,4000.0,1546646399999,1.0,0,0,0,0",
            r"line 4: high must be a number, was ''",
        ),
        (5, "", r"line 6: expected 12 comma-separated fields, found 1"),
        (
            12,
            "1546300800000,1,1,1,1,1,1546387199999,1,0,0,0,0",
            r"line 13: open times must strictly increase",
        ),
    ],
)
def test_malformed_row_raises_data_error_naming_file_and_line(
    tmp_path: Path, spot_lines: list[str], line_index: int, replacement: str, message: str
) -> None:
    lines = list(spot_lines)
    lines[line_index] = replacement
    path = write(tmp_path / "BTCUSD-1d-2019-01.csv", lines)
    with pytest.raises(DataError, match=rf"BTCUSD-1d-2019-01\.csv: {message}"):
        read_binance_klines(path)


def test_malformed_row_after_a_header_counts_the_header_line(tmp_path: Path, spot_lines: list[str]) -> None:
    lines = [",".join(KLINE_COLUMNS), *spot_lines]
    fields = lines[8].split(",")
    fields[5] = "oops"
    lines[8] = ",".join(fields)
    path = write(tmp_path / "BTCUSD-1d-2019-01.csv", lines)
    with pytest.raises(DataError, match=r"line 9: volume must be a number, was 'oops'"):
        read_binance_klines(path)


def test_duplicate_open_time_is_rejected(tmp_path: Path, spot_lines: list[str]) -> None:
    path = write(tmp_path / "BTCUSD-1d-2019-01.csv", [*spot_lines[:3], spot_lines[2], *spot_lines[3:]])
    with pytest.raises(DataError, match=r"line 4: open times must strictly increase; this row duplicates"):
        read_binance_klines(path)


def test_empty_file_gives_zero_candles(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSD-1d-2019-02.csv"
    path.write_text("")
    assert len(read_binance_klines(path)) == 0


def test_ohlcv_csv_with_iso_dates_and_inferred_daily_interval(tmp_path: Path, spot_lines: list[str]) -> None:
    rows = ["timestamp,open,high,low,close,volume"]
    for day, line in enumerate(spot_lines, start=1):
        fields = line.split(",")
        rows.append(f"2019-01-{day:02d}," + ",".join(fields[1:6]))
    candles = read_ohlcv_csv(write(tmp_path / "btc.csv", rows))
    assert (candles.symbol, candles.interval, len(candles)) == ("BTC", "1d", 31)
    assert candles.open_time[0] == JAN_1_2019_NS
    assert np.array_equal(candles.close, read_binance_klines(SPOT_FILE).close)


def test_ohlcv_csv_with_epoch_milliseconds_and_timezone_offsets_agree(tmp_path: Path) -> None:
    epoch = write(
        tmp_path / "a.csv", ["timestamp,open,high,low,close,volume", "1546300800000,1,2,0.5,1.5,10"]
    )
    iso = write(
        tmp_path / "b.csv",
        ["timestamp,open,high,low,close,volume", "2019-01-01T01:00:00+01:00,1,2,0.5,1.5,10"],
    )
    a = read_ohlcv_csv(epoch, symbol="BTCUSDT", interval="1h")
    b = read_ohlcv_csv(iso, symbol="BTCUSDT", interval="1h")
    assert a.open_time[0] == b.open_time[0] == JAN_1_2019_NS


def test_ohlcv_csv_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "BTCUSDT-1h.csv",
        [
            "timestamp,open,high,low,close,volume",
            "2019-01-01T00:00:00Z,1,2,0.5,1.5,10",
            "yesterday,1,2,0.5,1.5,10",
        ],
    )
    with pytest.raises(DataError, match=r"BTCUSDT-1h\.csv: line 3: timestamp must be ISO-8601"):
        read_ohlcv_csv(path)


def test_read_candle_file_dispatches_on_the_first_line(tmp_path: Path) -> None:
    ohlcv = write(
        tmp_path / "ETHUSDT-1h.csv",
        [
            "timestamp,open,high,low,close,volume",
            "1546300800000,1,2,0.5,1.5,10",
            "1546304400000,1.5,2,1,1.2,5",
        ],
    )
    assert read_candle_file(ohlcv).interval == "1h"
    assert len(read_candle_file(SPOT_FILE)) == 31


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTCUSDT-1h-2024-01.csv", ("BTCUSDT", "1h")),
        ("/data/binance/spot/ETHUSDT-1m-2024-01-15.csv", ("ETHUSDT", "1m")),
        ("BNBUSDT-1M-2023-12.zip", ("BNBUSDT", "1M")),
        ("1000SHIBUSDT-15m.csv", ("1000SHIBUSDT", "15m")),
    ],
)
def test_symbol_and_interval_come_from_binance_file_names(name: str, expected: tuple[str, str]) -> None:
    assert symbol_and_interval_from_filename(name) == expected


@pytest.mark.parametrize(
    "name", ["btcusdt-1h-2024-01.csv", "BTCUSDT-2x-2024-01.csv", "BTCUSDT.csv", "BTCUSDT-7m.csv"]
)
def test_other_file_names_are_rejected(name: str) -> None:
    with pytest.raises(DataError, match=r"file name must look like|interval must be one of"):
        symbol_and_interval_from_filename(name)


def test_interval_is_inferred_from_the_smallest_spacing() -> None:
    minute = 60_000_000_000
    assert infer_interval(np.array([0, minute * 5, minute * 20], dtype=np.int64)) == "5m"
    with pytest.raises(DataError, match="no Binance interval"):
        infer_interval(np.array([0, 7_000_000_000], dtype=np.int64))
