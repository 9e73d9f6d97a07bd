"""MongoCandleStore (fingerprint, replacement, read-only access) and MongoSymbolStore (list, filter)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from backtest_core.errors import DataError
from backtest_core.io.data_files import read_binance_klines
from backtest_core.model.candles import Candles
from backtest_marketdata.bucket_cache import BucketCache
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.models import Coverage, Symbol, SymbolFilter
from backtest_marketdata.mongo import reader_client
from backtest_marketdata.symbol_store import MongoSymbolStore
from pymongo.database import Database
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.integration

MINUTE = 60_000_000_000
JAN_2024 = 1_704_067_200_000_000_000


def minute_bars(symbol: str, start_ns: int, count: int, price: float = 100.0) -> Candles:
    """Build `count` one-minute bars from a real-shaped random walk with a fixed seed."""
    rng = np.random.default_rng(7)
    close = price * np.exp(np.cumsum(rng.normal(0, 1e-3, count)))
    return Candles(
        symbol=symbol,
        interval="1m",
        open_time=start_ns + np.arange(count, dtype=np.int64) * MINUTE,
        open=close * 0.9995,
        high=close * 1.001,
        low=close * 0.999,
        close=close,
        volume=np.full(count, 2.5),
    )


@pytest.fixture
def store(mongo_db: Database[dict[str, Any]]) -> MongoCandleStore:
    store = MongoCandleStore(mongo_db)
    store.ensure_indexes()
    return store


def test_minute_bars_across_months_are_stored_in_one_document_per_month(
    store: MongoCandleStore, mongo_db: Database[dict[str, Any]]
) -> None:
    bars = minute_bars("BTCUSDT", JAN_2024, 31 * 1440 + 100)  # January plus 100 minutes of February
    report = store.write(bars)
    assert (report.added, report.buckets_written) == (44_740, 2)
    assert mongo_db["candles"].count_documents({"symbol": "BTCUSDT"}) == 2
    loaded = store.load("BTCUSDT", "1m")
    assert np.array_equal(loaded.open_time, bars.open_time)
    assert np.array_equal(loaded.close, bars.close)
    february = store.load("BTCUSDT", "1m", JAN_2024 + 31 * 1440 * MINUTE, None)
    assert len(february) == 100


def test_fingerprint_changes_iff_bars_in_the_range_change(store: MongoCandleStore) -> None:
    bars = minute_bars("ETHUSDT", JAN_2024, 3000)
    store.write(bars)
    start, end = JAN_2024 + 100 * MINUTE, JAN_2024 + 200 * MINUTE
    before = store.fingerprint("ETHUSDT", "1m", start, end)
    assert store.fingerprint("ETHUSDT", "1m", start, end) == before
    store.write(bars)  # identical: nothing changes
    assert store.fingerprint("ETHUSDT", "1m", start, end) == before
    outside = bars.between(JAN_2024 + 2000 * MINUTE, JAN_2024 + 2001 * MINUTE)
    changed_outside = Candles(**{**_fields(outside), "close": outside.close + 1.0})
    report = store.write(changed_outside)
    assert (report.added, report.replaced) == (0, 1)
    assert store.fingerprint("ETHUSDT", "1m", start, end) == before
    assert store.fingerprint("ETHUSDT", "1m") != store.fingerprint("ETHUSDT", "1m", start, end)
    inside = bars.between(JAN_2024 + 150 * MINUTE, JAN_2024 + 151 * MINUTE)
    store.write(Candles(**{**_fields(inside), "volume": inside.volume * 2}))
    assert store.fingerprint("ETHUSDT", "1m", start, end) != before
    assert store.load("ETHUSDT", "1m", JAN_2024 + 150 * MINUTE, JAN_2024 + 151 * MINUTE).volume[0] == 5.0


def test_read_only_user_loads_candles_but_cannot_write(
    store: MongoCandleStore, mongo_db: Database[dict[str, Any]], mongo_readonly_uri: str, mongo_uri: str
) -> None:
    store.write(minute_bars("SOLUSDT", JAN_2024, 500))
    with reader_client(mongo_readonly_uri, serverSelectionTimeoutMS=10_000) as client:
        reader = MongoCandleStore(client[mongo_db.name])
        assert len(reader.load("SOLUSDT", "1m")) == 500
        assert reader.fingerprint("SOLUSDT", "1m") == store.fingerprint("SOLUSDT", "1m")
        if mongo_readonly_uri == mongo_uri:
            return  # MONGODB_URI given without MONGODB_READONLY_URI: there is no separate user to check
        with pytest.raises(OperationFailure, match="not authorized"):
            reader.write(minute_bars("SOLUSDT", JAN_2024 + 500 * MINUTE, 10))
    assert len(store.load("SOLUSDT", "1m")) == 500


def test_load_of_an_unknown_symbol_is_empty(store: MongoCandleStore) -> None:
    assert len(store.load("NOPEUSDT", "1h")) == 0
    assert store.gaps("NOPEUSDT", "1h") == []
    assert store.coverage("NOPEUSDT", "1h").count == 0


def _fields(c: Candles) -> dict[str, Any]:
    names = ("symbol", "interval", "open_time", "open", "high", "low", "close", "volume")
    return {n: getattr(c, n) for n in names}


# --- symbols -----------------------------------------------------------------------------------


@pytest.fixture
def symbols(mongo_db: Database[dict[str, Any]]) -> MongoSymbolStore:
    store = MongoSymbolStore(mongo_db)
    store.ensure_indexes()
    now = datetime(2024, 6, 1, tzinfo=UTC)
    rows = [
        ("BTCUSDT", "spot", 1.3e12, 2.1e10, True),
        ("ETHUSDT", "spot", 4.5e11, 1.2e10, True),
        ("BTCUSDT_PERP", "futures", None, 5.0e10, True),
        ("LUNAUSDT", "spot", 0.0, 1.0e5, False),
        ("SOLUSDT", "spot", 7.0e10, 3.0e9, True),
    ]
    for name, type_, cap, volume, active in rows:
        code = name.replace("_", "")
        store.upsert(
            Symbol(
                symbol=code,
                name=name,
                type=type_,
                market_cap=cap,
                volume_24h=volume,
                is_active=active,
                last_updated=now,
            )
        )
    return store


def test_list_pages_and_sorts_symbols(symbols: MongoSymbolStore) -> None:
    first = symbols.list(offset=0, limit=2)
    assert (first.total, [s.symbol for s in first.items]) == (5, ["BTCUSDT", "BTCUSDTPERP"])
    by_volume = symbols.list(limit=3, sort="volume_24h", descending=True)
    assert [s.symbol for s in by_volume.items] == ["BTCUSDTPERP", "BTCUSDT", "ETHUSDT"]
    last = symbols.list(offset=4, limit=2)
    assert [s.symbol for s in last.items] == ["SOLUSDT"]


def test_filter_by_type_activity_volume_and_market_cap(symbols: MongoSymbolStore) -> None:
    spot_active = symbols.filter(SymbolFilter(type="spot", is_active=True, min_volume_24h=5e9))
    assert [s.symbol for s in spot_active.items] == ["BTCUSDT", "ETHUSDT"]
    mid_cap = symbols.filter(SymbolFilter(min_market_cap=1e10, max_market_cap=1e12))
    assert [s.symbol for s in mid_cap.items] == ["ETHUSDT", "SOLUSDT"]


def test_filter_by_data_coverage(symbols: MongoSymbolStore, real_files: Any) -> None:
    btc = read_binance_klines(real_files.month("2019-01"))
    start, end = int(btc.open_time[0]), int(btc.open_time[-1])
    symbols.set_coverage(
        Coverage(
            symbol="BTCUSDT",
            interval="1d",
            first_ns=start,
            last_ns=end,
            count=31,
            expected=31,
            gaps=0,
            missing=0,
        )
    )
    symbols.set_coverage(
        Coverage(
            symbol="ETHUSDT",
            interval="1d",
            first_ns=start + 86_400 * 10**9 * 5,
            last_ns=end,
            count=20,
            expected=26,
            gaps=2,
            missing=6,
        )
    )
    assert [s.symbol for s in symbols.filter(SymbolFilter(has_interval="1d")).items] == ["BTCUSDT", "ETHUSDT"]
    from_jan_1 = SymbolFilter(has_interval="1d", covers_from=datetime(2019, 1, 1, tzinfo=UTC))
    assert [s.symbol for s in symbols.filter(from_jan_1).items] == ["BTCUSDT"]
    assert [s.symbol for s in symbols.filter(SymbolFilter(has_interval="1d", max_gaps=1)).items] == [
        "BTCUSDT"
    ]
    assert symbols.filter(SymbolFilter(has_interval="1m")).total == 0
    btc_record = symbols.get("BTCUSDT")
    assert btc_record is not None and btc_record.coverage["1d"].count == 31
    assert btc_record.market_cap == 1.3e12


def test_coverage_criteria_without_an_interval_are_rejected(symbols: MongoSymbolStore) -> None:
    with pytest.raises(DataError, match="need has_interval"):
        symbols.filter(SymbolFilter(max_gaps=0))


def test_a_cached_store_fetches_only_buckets_it_does_not_hold_by_their_hash(
    store: MongoCandleStore, mongo_db: Database[dict[str, Any]]
) -> None:
    bars = minute_bars("BTCUSDT", JAN_2024, 31 * 1440 + 100)  # two monthly buckets
    store.write(bars)
    cache = BucketCache(64 * 2**20)
    cached = MongoCandleStore(mongo_db, cache=cache)

    first = cached.load("BTCUSDT", "1m")
    again = cached.load("BTCUSDT", "1m", JAN_2024 + 10 * MINUTE, JAN_2024 + 31 * 1440 * MINUTE + 5 * MINUTE)
    assert (cache.misses, cache.hits, len(cache)) == (2, 2, 2)
    assert np.array_equal(first.close, bars.close) and len(again) == 31 * 1440 - 10 + 5
    assert np.array_equal(again.close, bars.close[10 : 31 * 1440 + 5])

    # re-ingested February: its new hash misses, January is still answered from memory
    february = bars.between(JAN_2024 + 31 * 1440 * MINUTE, None)
    store.write(Candles(**{**_fields(february), "close": february.close * 2.0}))
    after = cached.load("BTCUSDT", "1m")
    assert (cache.misses, cache.hits) == (3, 3)
    assert np.array_equal(after.close[: 31 * 1440], bars.close[: 31 * 1440])
    assert np.array_equal(after.close[31 * 1440 :], february.close * 2.0)
    assert np.array_equal(after.close, store.load("BTCUSDT", "1m").close)
