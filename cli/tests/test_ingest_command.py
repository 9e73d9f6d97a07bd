"""`backtest ingest` end to end on the repo's real daily files against the MongoDB-compatible server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from backtest_cli.main import main
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.mongo import database_name
from backtest_testinfra import zip_binance_archive
from pymongo.database import Database
from pymongo.uri_parser import parse_uri

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


def test_ingest_shows_no_progress_bar_when_stderr_is_not_a_terminal(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(DATA / "BTCUSD" / "1d" / "BTCUSD-1d-2019-0[12].csv")

    code = main(["ingest", pattern, "--mongodb-uri", mongo_uri, "--database", mongo_db.name])

    out, err = capsys.readouterr()
    assert code == 0
    assert "files: 2 added, 0 skipped, 0 rejected" in out
    assert err == ""


def _archive(
    folder: Path, symbol: str, month: str, *, checksum: Any = "valid", close_of_row: int | None = None
) -> Path:
    """Zip a shipped month as a Binance archive under `folder`; `close_of_row` gets its open as close."""
    lines = (DATA / symbol / "1d" / f"{symbol}-1d-{month}.csv").read_text().splitlines()
    if close_of_row is not None:
        fields = lines[close_of_row].split(",")
        fields[4] = fields[1]
        lines[close_of_row] = ",".join(fields)
    csv = folder / f"{symbol}-1d-{month}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(lines) + "\n")
    return zip_binance_archive(csv, checksum=checksum)


def _ingest(mongo_uri: str, db: Database[dict[str, Any]], *args: str) -> int:
    return main(["ingest", *args, "--mongodb-uri", mongo_uri, "--database", db.name, "--quiet"])


def test_reingesting_the_original_after_its_correction_replaces_the_changed_close_again(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _archive(tmp_path / "original", "ETHUSD", "2019-04")  # 30 real days
    corrected = _archive(tmp_path / "corrected", "ETHUSD", "2019-04", close_of_row=9)

    outputs = []
    for archive in (original, corrected, original):
        assert _ingest(mongo_uri, mongo_db, str(archive)) == 0
        outputs.append(capsys.readouterr().out)

    assert "candles: 30 added, 0 replaced, 0 already stored" in outputs[0]
    assert "candles: 0 added, 1 replaced, 29 already stored" in outputs[1]
    assert "candles: 0 added, 1 replaced, 29 already stored" in outputs[2]
    shipped = (DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-04.csv").read_text().splitlines()
    assert MongoCandleStore(mongo_db).load("ETHUSD", "1d").close[9] == float(shipped[9].split(",")[4])


def test_force_says_how_many_ingested_files_it_re_read_and_what_changed(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archives = [str(_archive(tmp_path, "ETHUSD", month)) for month in ("2019-04", "2019-05")]
    assert _ingest(mongo_uri, mongo_db, *archives) == 0
    capsys.readouterr()

    assert _ingest(mongo_uri, mongo_db, *archives, "--force") == 0

    out = capsys.readouterr().out
    assert "files: 0 added, 2 skipped, 0 rejected" in out
    assert "--force: 2 files already ingested were re-read and compared bar by bar: 0 candles changed" in out


def test_archive_without_checksum_is_reported_not_verified(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verified = _archive(tmp_path, "ETHUSD", "2019-04")
    unverified = _archive(tmp_path, "ETHUSD", "2019-05", checksum=None)

    assert _ingest(mongo_uri, mongo_db, str(verified), str(unverified)) == 0

    out = capsys.readouterr().out
    assert "files: 2 added, 0 skipped, 0 rejected" in out
    assert "checksums: 1 verified, 1 not verified (no .CHECKSUM beside it): ETHUSD-1d-2019-05.zip" in out


def test_require_checksum_rejects_an_archive_without_one_and_exits_1(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verified = _archive(tmp_path, "ETHUSD", "2019-04")
    unverified = _archive(tmp_path, "ETHUSD", "2019-05", checksum=None)

    assert _ingest(mongo_uri, mongo_db, str(verified), str(unverified), "--require-checksum") == 1

    out, err = capsys.readouterr()
    assert "files: 1 added, 0 skipped, 1 rejected" in out
    assert "ETHUSD-1d-2019-05.zip: expected a checksum file ETHUSD-1d-2019-05.zip.CHECKSUM beside it" in err
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 30


def test_checksum_naming_another_archive_is_one_rejection_printed_once(
    mongo_uri: str, mongo_db: Database[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    misnamed = _archive(tmp_path, "ETHUSD", "2019-04", checksum="other-name")

    assert _ingest(mongo_uri, mongo_db, str(misnamed)) == 1

    out, err = capsys.readouterr()
    message = (
        "ETHUSD-1d-2019-04.zip.CHECKSUM is for 'LTCUSD-1d-2019-04.zip', expected 'ETHUSD-1d-2019-04.zip'"
    )
    assert (out + err).count(message) == 1
    assert "files: 0 added, 0 skipped, 1 rejected" in out
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 0


def _uri_for(mongo_uri: str, database: str) -> str:
    """Return `mongo_uri` naming `database` in its path, as the URIs scripts/infra writes do."""
    uri = mongo_uri.replace("/?", f"/{database}?", 1)
    assert database_name(uri) == database
    return uri


def _write_platform_env(run_dir: Path, uri: str) -> Path:
    """Write ``<run_dir>/env`` as scripts/infra up does."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = run_dir / "env"
    env.write_text(f"# Written by scripts/infra up\nMONGODB_URI='{uri}'\nNATS_URL='nats://127.0.0.1:4222'\n")
    return env


def test_ingest_without_a_uri_uses_the_platform_env_file_and_says_so(
    mongo_uri: str,
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = _write_platform_env(tmp_path / "run", _uri_for(mongo_uri, mongo_db.name))
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("MONGODB_URI", raising=False)

    code = main(["ingest", str(DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-04.csv"), "--quiet"])

    out = capsys.readouterr().out
    assert code == 0
    assert f"/{mongo_db.name}?replicaSet=rs0&authSource=admin (from {env})" in out
    assert ":***@" in out
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 30


def test_ingest_finds_the_env_file_of_the_checkout_whose_virtualenv_runs_it(
    mongo_uri: str,
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = _write_platform_env(tmp_path / "checkout" / ".run", _uri_for(mongo_uri, mongo_db.name))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "checkout" / ".venv"))
    monkeypatch.delenv("BACKTEST_RUN_DIR", raising=False)
    monkeypatch.delenv("MONGODB_URI", raising=False)

    code = main(["ingest", str(DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-04.csv"), "--quiet"])

    assert code == 0
    assert f"(from {env})" in capsys.readouterr().out
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 30


def test_explicit_mongodb_uri_wins_over_the_platform_env_file(
    mongo_uri: str,
    mongo_db: Database[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write_platform_env(tmp_path / "run", "mongodb://127.0.0.1:1/elsewhere?replicaSet=rs0")
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("MONGODB_URI", _uri_for(mongo_uri, mongo_db.name))

    code = main(["ingest", str(DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-04.csv"), "--quiet"])

    assert code == 0
    assert "(from MONGODB_URI)" in capsys.readouterr().out
    assert len(MongoCandleStore(mongo_db).load("ETHUSD", "1d")) == 30


def test_ingest_refused_for_lack_of_credentials_says_what_to_set(
    mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = parse_uri(mongo_uri)["nodelist"][0]
    anonymous = f"mongodb://{host[0]}:{host[1]}/?replicaSet=rs0"
    monkeypatch.setenv("BACKTEST_RUN_DIR", str(tmp_path / "run"))

    code = main(["ingest", str(DATA / "ETHUSD" / "1d" / "ETHUSD-1d-2019-04.csv"), "--mongodb-uri", anonymous])

    err = capsys.readouterr().err
    assert code == 2
    assert f"database {anonymous} (from --mongodb-uri) refused the request" in err
    assert (
        "set MONGODB_URI (or --mongodb-uri) to a URI with a user that may write, e.g. the MONGODB_URI "
        f"that scripts/infra up writes to {tmp_path / 'run' / 'env'}"
    ) in err
