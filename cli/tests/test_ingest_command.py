"""`backtest ingest` end to end on the repo's real daily files against the MongoDB-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backtest_cli.main import main
from backtest_marketdata.candle_store import MongoCandleStore
from pymongo.database import Database

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data" / "binance" / "spot" / "monthly" / "klines"


def test_ingest_of_a_glob_stores_every_bar_and_a_rerun_skips_every_file(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-*.csv")
    argv = ["ingest", pattern, "--mongodb-uri", mongo_uri, "--database", mongo_db.name, "--quiet"]

    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out

    assert "files: 12 added, 0 skipped, 0 rejected" in first
    assert "candles: 353 added, 0 replaced, 0 already stored" in first  # 365 days minus the real 12-day gap
    assert "files: 0 added, 12 skipped, 0 rejected" in second
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 353


def test_ingest_with_a_malformed_file_exits_1_and_names_file_and_line(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (DATA / "LTCUSD" / "1d" / "LTCUSD-1d-2019-06.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[4] = "zero"  # the close
    lines[3] = ",".join(fields)
    broken = tmp_path / "LTCUSD-1d-2019-06.csv"
    broken.write_text("\n".join(lines) + "\n")
    good = DATA / "LTCUSD" / "1d" / "LTCUSD-1d-2019-07.csv"

    code = main(
        ["ingest", str(good), str(broken), "--mongodb-uri", mongo_uri, "--database", mongo_db.name, "--quiet"]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert "files: 1 added, 0 skipped, 1 rejected" in out
    assert "LTCUSD-1d-2019-06.csv: line 4: close must be a number, was 'zero'" in err
    assert len(MongoCandleStore(mongo_db).load("LTCUSD", "1d")) == 31


def test_ingest_of_a_missing_path_exits_2(mongo_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "/nonexistent/BTCUSDT-1m-2024-01.zip", "--mongodb-uri", mongo_uri]) == 2
    assert "expected a file, folder or glob" in capsys.readouterr().err
