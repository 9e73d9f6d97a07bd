"""`backtest run` infers the interval (and the symbol where the file name says it) from real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from backtest_cli.main import main
from backtest_core.data_files import read_binance_klines

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
