"""The real candles in data/ are Binance spot kline CSV files, and the converter that made them works."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from backtest_core.io.data_files import read_binance_klines, symbol_and_interval_from_filename

REPO = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


def converter() -> ModuleType:
    """Import scripts/convert_shared_data.py as a module."""
    spec = importlib.util.spec_from_file_location(
        "convert_shared_data", REPO / "scripts" / "convert_shared_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("exchange", "symbol", "files", "bars", "first_ms"),
    [
        ("binance", "BTCUSD", 63, 1865, 1_417_132_800_000),  # 2014-11-28
        ("binance", "ETHUSD", 27, 788, 1_510_185_600_000),  # 2017-11-09
        ("binance", "LTCUSD", 32, 925, 1_498_348_800_000),  # 2017-06-25
        ("bitfinex", "BTCUSD", 62, 1862, 1_417_392_000_000),  # 2014-12-01
        ("bitfinex", "ETHUSD", 45, 1319, 1_464_307_200_000),  # 2016-05-27
    ],
)
def test_monthly_files_are_twelve_column_binance_klines(
    exchange: str, symbol: str, files: int, bars: int, first_ms: int
) -> None:
    folder = REPO / "data" / exchange / "spot" / "monthly" / "klines" / symbol / "1d"
    paths = sorted(folder.glob("*.csv"))
    assert len(paths) == files
    rows = [line.split(",") for p in paths for line in p.read_text().splitlines()]
    assert len(rows) == bars
    assert int(rows[0][0]) == first_ms
    for path in paths:
        assert symbol_and_interval_from_filename(path.name) == (symbol, "1d")
        month = path.stem.rsplit("-", 2)[-2:]
        candles = read_binance_klines(path)
        assert str(candles.open_time[0].astype("datetime64[ns]"))[:7] == "-".join(month)
    for row in rows:
        assert len(row) == 12
        assert int(row[6]) == int(row[0]) + DAY_MS - 1
        assert row[7:] == ["0.00000000", "0", "0.00000000", "0.00000000", "0"]
        low, high = float(row[3]), float(row[2])
        assert low <= min(float(row[1]), float(row[4])) <= max(float(row[1]), float(row[4])) <= high


def test_converter_skips_unlisted_days_and_splits_by_month(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    header = ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume"
    (source / "bitfinex_BTC_ETH_USD_1d.csv").write_text(
        f"{header}\n"
        "2016-05-31,530.0,540.5,525.0,531.25,1000.5,,,,,\n"
        "2016-06-01,531.25,545.0,530.0,540.0,0.11199999999999999,14.0,14.5,13.5,14.25,2000.0\n"
    )
    (source / "bitstamp_BTC_ETH_LTC_USD_1d.csv").write_text(
        f"{header},LTC:open,LTC:high,LTC:low,LTC:close,LTC:volume\n"
    )
    files = converter().build(source, tmp_path / "out")
    base = tmp_path / "out" / "bitfinex" / "spot" / "monthly" / "klines"
    assert sorted(p.relative_to(base).as_posix() for p in files) == [
        "BTCUSD/1d/BTCUSD-1d-2016-05.csv",
        "BTCUSD/1d/BTCUSD-1d-2016-06.csv",
        "ETHUSD/1d/ETHUSD-1d-2016-06.csv",
    ]
    assert files[base / "BTCUSD/1d/BTCUSD-1d-2016-06.csv"] == (
        "1464739200000,531.25000000,545.00000000,530.00000000,540.00000000,0.11200000,"
        "1464825599999,0.00000000,0,0.00000000,0.00000000,0\n"
    )


def test_converter_refuses_a_half_blank_row_naming_the_line(tmp_path: Path) -> None:
    source = tmp_path / "bitfinex_BTC_ETH_USD_1d.csv"
    source.write_text(
        ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume\n2016-05-31,530.0,540.5,,531.25,1000.5\n"
    )
    with pytest.raises(ValueError, match=r"bitfinex_BTC_ETH_USD_1d.csv:2: BTC has some but not all"):
        converter().kline_rows(source, "BTC")
