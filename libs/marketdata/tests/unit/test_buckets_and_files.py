"""Pure parts of market data: bucketing, merging, gap finding, checksums, discovery, REST payloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from backtest_core.errors import DataError
from backtest_marketdata.binance_rest import parse_klines
from backtest_marketdata.buckets import Columns, bucket_starts, bucket_unit, merge
from backtest_marketdata.candle_store import find_gaps
from backtest_marketdata.ingest import discover, symbol_type_of, verify_checksum

pytestmark = pytest.mark.unit

MINUTE = 60_000_000_000
DAY = 86_400_000_000_000
JAN_2024 = 1_704_067_200_000_000_000  # 2024-01-01T00:00Z
FEB_2024 = 1_706_745_600_000_000_000


def columns(times: list[int], price: float = 1.0) -> Columns:
    t = np.array(times, dtype=np.int64)
    p = np.full(len(t), price)
    return Columns(open_time=t, open=p, high=p, low=p, close=p, volume=p)


def test_bucket_unit_is_day_for_seconds_month_for_minutes_year_for_hours() -> None:
    assert [bucket_unit(i) for i in ("1s", "1m", "30m", "1h", "1d", "1M")] == ["D", "M", "M", "Y", "Y", "Y"]


def test_minute_bars_are_bucketed_by_utc_month() -> None:
    times = np.array([JAN_2024, FEB_2024 - MINUTE, FEB_2024, FEB_2024 + 5 * MINUTE], dtype=np.int64)
    assert bucket_starts(times, "1m").tolist() == [JAN_2024, JAN_2024, FEB_2024, FEB_2024]


def test_merge_of_identical_bars_adds_nothing() -> None:
    stored = columns([0, MINUTE, 2 * MINUTE])
    result = merge(stored, columns([MINUTE, 2 * MINUTE]))
    assert (result.added, result.replaced, result.unchanged) == (0, 0, 2)
    assert result.merged is stored


def test_merge_of_overlapping_bars_unions_and_incoming_values_win() -> None:
    result = merge(columns([0, MINUTE, 2 * MINUTE]), columns([2 * MINUTE, 3 * MINUTE], price=2.0))
    assert (result.added, result.replaced, result.unchanged) == (1, 1, 0)
    assert result.merged.open_time.tolist() == [0, MINUTE, 2 * MINUTE, 3 * MINUTE]
    assert result.merged.close.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_merge_fills_a_hole_between_stored_bars() -> None:
    result = merge(columns([0, 3 * MINUTE]), columns([MINUTE, 2 * MINUTE]))
    assert result.added == 2
    assert result.merged.open_time.tolist() == [0, MINUTE, 2 * MINUTE, 3 * MINUTE]


def test_packed_columns_round_trip_and_hash_changes_with_any_value() -> None:
    original = columns([0, MINUTE], price=3.5)
    packed = original.pack()
    assert len(packed["t"]) == 16
    restored = Columns.unpack(dict(packed))
    assert restored.open_time.tolist() == [0, MINUTE]
    assert restored.sha256() == original.sha256()
    assert columns([0, MINUTE], price=3.6).sha256() != original.sha256()


def test_gaps_count_missing_minutes() -> None:
    times = np.array([0, MINUTE, 4 * MINUTE, 5 * MINUTE, 7 * MINUTE], dtype=np.int64)
    gaps = find_gaps(times, "1m")
    assert [(g.start_ns, g.end_ns, g.missing) for g in gaps] == [
        (2 * MINUTE, 4 * MINUTE, 2),
        (6 * MINUTE, 7 * MINUTE, 1),
    ]


def test_monthly_bars_use_calendar_months_for_gaps() -> None:
    months = np.array(["2024-01", "2024-02", "2024-05"], dtype="datetime64[M]").astype("datetime64[ns]")
    gaps = find_gaps(months.astype(np.int64), "1M")
    assert len(gaps) == 1
    assert gaps[0].missing == 2
    assert gaps[0].start_ns == np.datetime64("2024-03-01", "ns").astype(np.int64)


def test_rest_payload_in_milliseconds_becomes_candles() -> None:
    payload = [
        [
            1704067200000,
            "42283.58",
            "42554.57",
            "42261.02",
            "42475.23",
            "1271.68",
            1704070799999,
            "5.4e7",
            1,
            "1",
            "1",
            "0",
        ],
        [
            1704070800000,
            "42475.23",
            "42775.00",
            "42431.65",
            "42613.56",
            "1196.37",
            1704074399999,
            "5.1e7",
            1,
            "1",
            "1",
            "0",
        ],
    ]
    candles = parse_klines(payload, "BTCUSDT", "1h", "test")
    assert candles.open_time.tolist() == [JAN_2024, JAN_2024 + 60 * MINUTE]
    assert candles.close.tolist() == [42475.23, 42613.56]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"code": -1121, "msg": "Invalid symbol."}, "expected a JSON array of klines, was dict"),
        ([[1704067200000, "1", "2"]], "row 0: expected an array of 12 fields"),
        (
            [
                [1704067200000, "1", "2", "0.5", "1.5", "1", 0, "0", 0, "0", "0", "0"],
                [1, "x", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            ],
            "row 1: expected numbers in fields 1-6",
        ),
    ],
)
def test_malformed_rest_payload_names_the_row(payload: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_klines(payload, "BTCUSDT", "1h", "http://x/api/v3/klines")


def test_checksum_in_binance_format_is_verified(tmp_path: Path) -> None:
    archive = tmp_path / "BTCUSDT-1m-2024-01.zip"
    archive.write_bytes(b"PK fake archive bytes")
    checksum = archive.with_name(archive.name + ".CHECKSUM")
    checksum.write_text(
        "4c0fa4b1d7e1a2a5d7c10fbdbbdcd0ce9cb1f8e2a4bdc0b7da83cfad2b29a6f4  BTCUSDT-1m-2024-01.zip\n"
    )
    with pytest.raises(
        DataError, match=r"checksum mismatch: BTCUSDT-1m-2024-01\.zip\.CHECKSUM says 4c0fa4b1"
    ):
        verify_checksum(archive, archive.read_bytes())
    checksum.write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  BTCUSDT-1m-2024-01.zip\n")
    verify_checksum(archive, archive.read_bytes())


def test_discover_expands_folders_and_globs_once_and_ignores_checksum_files(tmp_path: Path) -> None:
    for name in (
        "a/BTCUSDT-1m-2024-01.zip",
        "a/BTCUSDT-1m-2024-01.zip.CHECKSUM",
        "a/b/ETHUSDT-1m-2024-01.csv",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = discover([str(tmp_path / "a"), str(tmp_path / "a" / "*.zip")])
    assert [p.name for p in found] == ["BTCUSDT-1m-2024-01.zip", "ETHUSDT-1m-2024-01.csv"]
    with pytest.raises(DataError, match=r"expected \.zip or \.csv files, matched none"):
        discover([str(tmp_path / "nothing-*.csv")])


def test_files_under_a_futures_folder_are_futures_symbols() -> None:
    assert symbol_type_of(Path("data/futures/um/monthly/klines/BTCUSDT/1m/x.zip")) == "futures"
    assert symbol_type_of(Path("data/spot/monthly/klines/BTCUSDT/1m/x.zip")) == "spot"
