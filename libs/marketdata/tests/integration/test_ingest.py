"""Ingesting real Binance-format files into the MongoDB-compatible server, in every archive variant."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from backtest_core.data_files import read_binance_klines
from backtest_marketdata.ingest import Ingestor, discover
from pymongo.database import Database

pytestmark = pytest.mark.integration

JAN_1_2019_NS = 1_546_300_800_000_000_000
DAY_NS = 86_400_000_000_000


@pytest.fixture
def ingestor(mongo_db: Database[dict[str, Any]]) -> Ingestor:
    ingestor = Ingestor(mongo_db)
    ingestor.ensure_indexes()
    return ingestor


def test_spot_file_without_header_is_stored_exactly(ingestor: Ingestor, real_files: Any) -> None:
    summary = ingestor.ingest([real_files.month("2019-01")])
    assert (summary.count("added"), summary.candles_added) == (1, 31)
    stored = ingestor.candles.load("BTCUSD", "1d")
    original = read_binance_klines(real_files.month("2019-01"))
    assert len(stored) == 31
    assert stored.open_time[0] == JAN_1_2019_NS
    for column in ("open_time", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(stored, column), getattr(original, column)), column


def test_header_microsecond_and_zip_variants_store_the_same_bars(ingestor: Ingestor, real_files: Any) -> None:
    header = real_files.write(
        "futures/BTCUSD-1d-2019-01.csv", [real_files.header, *real_files.lines("2019-01")]
    )
    micro = real_files.write(
        "spot/BTCUSD-1d-2019-02.csv", [real_files.to_microseconds(x) for x in real_files.lines("2019-02")]
    )
    zipped = real_files.zip(real_files.copy("2019-03"))
    summary = ingestor.ingest([header, micro, zipped])
    assert [f.status for f in summary.files] == ["added", "added", "added"]
    assert [f.added for f in summary.files] == [31, 28, 19]  # March 2019 ends on the 19th (a real gap)
    stored = ingestor.candles.load("BTCUSD", "1d")
    assert len(stored) == 78
    assert np.all(np.diff(stored.open_time[:59]) == DAY_NS)
    assert stored.close[31] == read_binance_klines(real_files.month("2019-02")).close[0]


def test_reingesting_the_same_files_adds_nothing(ingestor: Ingestor, real_files: Any) -> None:
    paths = [real_files.month(m) for m in ("2019-01", "2019-02")]
    first = ingestor.ingest(paths)
    again = ingestor.ingest(paths)
    forced = ingestor.ingest(paths, force=True)
    assert first.candles_added == 59
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert [f.message for f in again.files] == ["already ingested (same bytes)"] * 2
    assert (forced.candles_added, forced.count("skipped"), sum(f.unchanged for f in forced.files)) == (
        0,
        2,
        59,
    )
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 59


def test_overlapping_files_merge_into_one_series(ingestor: Ingestor, real_files: Any) -> None:
    lines = real_files.lines("2019-01")
    first = real_files.write("a/BTCUSD-1d-2019-01.csv", lines[:20])
    second = real_files.write("b/BTCUSD-1d-2019-01.csv", lines[10:])
    summary = ingestor.ingest([first, second])
    assert [(f.added, f.unchanged) for f in summary.files] == [(20, 0), (11, 10)]
    stored = ingestor.candles.load("BTCUSD", "1d")
    assert len(stored) == 31
    assert np.array_equal(stored.close, read_binance_klines(real_files.month("2019-01")).close)


def test_bad_checksum_rejects_the_file_and_leaves_stored_data_untouched(
    ingestor: Ingestor, real_files: Any
) -> None:
    ingestor.ingest([real_files.month("2019-01")])
    before = ingestor.candles.fingerprint("BTCUSD", "1d")
    bad = real_files.zip(real_files.copy("2019-02"), checksum="wrong")
    summary = ingestor.ingest([bad])
    assert summary.count("rejected") == 1
    assert "BTCUSD-1d-2019-02.zip: checksum mismatch" in summary.rejected[0].message
    assert ingestor.candles.fingerprint("BTCUSD", "1d") == before
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 31


def test_malformed_row_rejects_the_whole_file_naming_the_line(ingestor: Ingestor, real_files: Any) -> None:
    lines = real_files.lines("2019-02")
    lines[16] = lines[16].replace(",", ";", 3)
    broken = real_files.write("spot/BTCUSD-1d-2019-02.csv", lines)
    good = real_files.month("2019-01")
    summary = ingestor.ingest([good, broken])
    assert [f.status for f in summary.files] == ["added", "rejected"]
    assert (
        "BTCUSD-1d-2019-02.csv: line 17: expected 12 comma-separated fields, found 9"
        in summary.rejected[0].message
    )
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 31


def test_gaps_and_coverage_are_reported_per_symbol_and_interval(ingestor: Ingestor, real_files: Any) -> None:
    ingestor.ingest(discover([str(real_files.source / "BTCUSD-1d-2019-0[1-5].csv")]))
    gaps = ingestor.candles.gaps("BTCUSD", "1d")
    assert len(gaps) == 1
    assert gaps[0].missing == 12  # real: no rows 2019-03-20 .. 2019-03-31
    assert gaps[0].start_ns == np.datetime64("2019-03-20", "ns").astype(np.int64)
    assert gaps[0].end_ns == np.datetime64("2019-04-01", "ns").astype(np.int64)
    coverage = ingestor.candles.coverage("BTCUSD", "1d")
    assert (coverage.count, coverage.expected, coverage.gaps, coverage.missing) == (139, 151, 1, 12)
    symbol = ingestor.symbols.get("BTCUSD")
    assert symbol is not None
    assert (symbol.type, symbol.coverage["1d"].count, symbol.coverage["1d"].gaps) == ("spot", 139, 1)


def test_whole_real_history_loads_by_range(ingestor: Ingestor, real_files: Any) -> None:
    summary = ingestor.ingest(discover([str(real_files.source)]))
    assert (summary.count("added"), summary.candles_added) == (63, 1865)
    year_2018 = ingestor.candles.load(
        "BTCUSD",
        "1d",
        np.datetime64("2018-01-01", "ns").astype(np.int64),
        np.datetime64("2019-01-01", "ns").astype(np.int64),
    )
    assert len(year_2018) == 365
    assert year_2018.open_time[0] == np.datetime64("2018-01-01", "ns").astype(np.int64)
    assert ingestor.candles.series() == [("BTCUSD", "1d")]
