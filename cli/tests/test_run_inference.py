"""`backtest run` infers the interval (and the symbol where the file name says it) from real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from backtest_cli.main import main
from backtest_core.io.data_files import read_binance_klines

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
JAN = BTC_DIR / "BTCUSD-1d-2017-01.csv"
YEAR_2017 = sorted(BTC_DIR.glob("BTCUSD-1d-2017-*.csv"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_loose_name_gives_symbol_and_data_gives_interval(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    loose = tmp_path / "BTCUSD-1d-coinbase.csv"
    loose.write_text("".join(path.read_text() for path in YEAR_2017))
    code, out, err = run(capsys, "--data", str(loose))
    assert code == 0, err
    reference = json.loads(out)
    code, out, err = run(capsys, "--data", *map(str, YEAR_2017))
    assert code == 0, err
    named = json.loads(out)
    assert reference["total_return_pct"] == named["total_return_pct"]
    assert reference["trade_count"] == named["trade_count"] > 0
    assert reference["final_equity"] == named["final_equity"] != reference["start_equity"]
    assert reference["data"]["BTCUSD"]["bars"] == 365
    assert reference["settings"]["interval"] == "1d" and reference["settings"]["symbols"] == ["BTCUSD"]


def test_nameless_file_needs_only_the_symbol(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nameless = tmp_path / "btc_hourly.csv"
    shutil.copy(JAN, nameless)
    code, out, err = run(capsys, "--data", str(nameless), "--symbol", "BTCUSD")
    assert code == 0, err
    assert json.loads(out)["settings"]["interval"] == "1d"


def test_interval_from_open_time_spacing_when_close_time_is_no_interval(tmp_path: Path) -> None:
    """close_time zeroed: the spacing of open times (one day) is the interval."""
    rows = [line.split(",") for line in JAN.read_text().splitlines()]
    for row in rows:
        row[6] = "0"
    odd = tmp_path / "export.csv"
    odd.write_text("\n".join(",".join(row) for row in rows) + "\n")
    candles = read_binance_klines(odd, symbol="BTCUSD")
    assert candles.interval == "1d" and len(candles) == 31


def test_missing_symbol_names_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nameless = tmp_path / "klines.csv"
    shutil.copy(JAN, nameless)
    assert main(["run", "--data", str(nameless), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "klines.csv" in err and "--symbol" in err


def _as_hourly(daily: list[Path]) -> str:
    """Return the daily kline rows re-timed one hour apart (same prices), close_time = open + 1 h - 1 ms."""
    rows = [line.split(",") for path in daily for line in path.read_text().splitlines()]
    start = int(rows[0][0])
    for i, row in enumerate(rows):
        row[0], row[6] = str(start + i * 3_600_000), str(start + (i + 1) * 3_600_000 - 1)
    return "\n".join(",".join(row) for row in rows) + "\n"


def test_hourly_files_named_loosely_run_with_the_symbol_alone_and_annualise_per_hour(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    hourly = _as_hourly(YEAR_2017)
    named, nameless = tmp_path / "BTCUSD-1h-coinbase.csv", tmp_path / "btc_hourly.csv"
    named.write_text(hourly)
    nameless.write_text(hourly)
    code, out, err = run(capsys, "--data", *map(str, YEAR_2017))
    assert code == 0, err
    daily = json.loads(out)
    code, out, err = run(capsys, "--data", str(named))
    assert code == 0, err
    from_name = json.loads(out)
    code, out, err = run(capsys, "--data", str(nameless), "--symbol", "BTCUSD")
    assert code == 0, err
    from_symbol = json.loads(out)
    for got in (from_name, from_symbol):
        assert (got["settings"]["interval"], got["settings"]["symbols"]) == ("1h", ["BTCUSD"])
        assert got["periods_per_year"] == 8760.0  # 365 days of 24 bars
        # The same closes and fills, so the same per-bar returns; only the annualisation differs:
        # Sharpe scales by sqrt(8760 / 365) = sqrt(24).
        assert got["final_equity"] == daily["final_equity"]
        assert got["sharpe"] == pytest.approx(daily["sharpe"] * 24**0.5, rel=1e-12)
