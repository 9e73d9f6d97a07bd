"""Ingesting real Binance-format files into the MongoDB-compatible server, in every archive variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backtest_core.io.data_files import read_binance_klines
from backtest_marketdata.ingest import LEDGER_COLLECTION, SKIPPED_UNREAD, Ingestor, discover
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
    assert [f.message for f in again.files] == [
        "already ingested (same bytes, stored bars unchanged since)"
    ] * 2
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


def _corrected(lines: list[str], row: int) -> list[str]:
    """Return the rows with the close of `row` set to its open (a correction inside the bar's range)."""
    fields = lines[row].split(",")
    fields[4] = fields[1]
    return [*lines[:row], ",".join(fields), *lines[row + 1 :]]


def test_reingesting_an_archive_after_its_correction_restores_the_archives_candles(
    ingestor: Ingestor, real_files: Any
) -> None:
    lines = real_files.lines("2019-04")  # 30 real days
    original = real_files.zip(real_files.write("a/BTCUSD-1d-2019-04.csv", lines))
    corrected = real_files.zip(real_files.write("b/BTCUSD-1d-2019-04.csv", _corrected(lines, 9)))
    original_close = read_binance_klines(real_files.month("2019-04")).close[9]

    first = ingestor.ingest([original])
    correction = ingestor.ingest([corrected])
    again = ingestor.ingest([original])

    assert (first.candles_added, correction.candles_replaced) == (30, 1)
    assert [(f.status, f.added, f.replaced, f.unchanged) for f in again.files] == [("added", 0, 1, 29)]
    assert ingestor.candles.load("BTCUSD", "1d").close[9] == original_close
    skipped = ingestor.ingest([original])
    assert [(f.status, f.unchanged, f.message) for f in skipped.files] == [
        ("skipped", 30, "already ingested (same bytes, stored bars unchanged since)")
    ]


def test_reingest_restores_bars_changed_by_another_writer_in_the_same_run(
    ingestor: Ingestor, real_files: Any
) -> None:
    lines = real_files.lines("2019-04")
    original = real_files.zip(real_files.write("a/BTCUSD-1d-2019-04.csv", lines))
    corrected = real_files.zip(real_files.write("b/BTCUSD-1d-2019-04.csv", _corrected(lines, 3)))

    summary = ingestor.ingest([original, corrected, original])

    assert [(f.added, f.replaced, f.unchanged) for f in summary.files] == [(30, 0, 0), (0, 1, 29), (0, 1, 29)]
    stored = ingestor.candles.load("BTCUSD", "1d")
    assert stored.close[3] == read_binance_klines(real_files.month("2019-04")).close[3]


def test_archive_without_checksum_is_stored_and_reported_not_verified(
    ingestor: Ingestor, real_files: Any
) -> None:
    verified = real_files.zip(real_files.copy("2019-04"))
    unverified = real_files.zip(real_files.copy("2019-05"), checksum=None)

    summary = ingestor.ingest([verified, unverified])

    assert [(f.status, f.checksum) for f in summary.files] == [("added", "verified"), ("added", "missing")]
    assert [Path(f.path).name for f in summary.not_verified] == ["BTCUSD-1d-2019-05.zip"]
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 61


def test_require_checksum_rejects_an_archive_without_one_and_stores_nothing_of_it(
    ingestor: Ingestor, real_files: Any
) -> None:
    verified = real_files.zip(real_files.copy("2019-04"))
    unverified = real_files.zip(real_files.copy("2019-05"), checksum=None)

    summary = ingestor.ingest([verified, unverified], require_checksum=True)

    assert [f.status for f in summary.files] == ["added", "rejected"]
    assert summary.rejected[0].message == (
        f"{unverified}: expected a checksum file {unverified.name}.CHECKSUM beside it "
        "(checksums are required), found none"
    )
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 30


def test_checksum_file_naming_another_archive_rejects_the_archive(
    ingestor: Ingestor, real_files: Any
) -> None:
    archive = real_files.zip(real_files.copy("2019-04"), checksum="other-name")

    summary = ingestor.ingest([archive])

    assert summary.count("rejected") == 1
    assert summary.rejected[0].message == (
        f"{archive}: {archive.name}.CHECKSUM is for 'LTCUSD-1d-2019-04.zip', expected 'BTCUSD-1d-2019-04.zip'"
    )
    assert len(ingestor.candles.load("BTCUSD", "1d")) == 0


def test_ledger_entry_without_a_fingerprint_is_re_read_once_then_trusted(
    ingestor: Ingestor, real_files: Any, mongo_db: Database[dict[str, Any]]
) -> None:
    path = real_files.month("2019-04")
    ingestor.ingest([path])
    legacy = {"name": path.name, "symbol": "BTCUSD", "interval": "1d", "rows": 30}  # as written before
    mongo_db[LEDGER_COLLECTION].update_many({}, [{"$project": dict.fromkeys(legacy, 1)}])

    first = ingestor.ingest([path])
    second = ingestor.ingest([path])

    assert [(f.status, f.unchanged, f.message) for f in first.files] == [
        ("skipped", 30, "every bar already stored")
    ]
    assert [(f.status, f.unchanged, f.message) for f in second.files] == [("skipped", 30, SKIPPED_UNREAD)]
