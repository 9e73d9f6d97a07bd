"""`backtest run` on the real daily files shipped in data/: numbers, inputs, settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from backtest_cli.main import main
from backtest_cli.run import parse_params
from backtest_core.engine.run import run_backtest
from backtest_core.io.data_files import read_binance_klines
from backtest_core.model.candles import COLUMNS, Candles
from backtest_core.model.config import BacktestConfig, FeeModel

REPO = Path(__file__).resolve().parents[2]
KLINES = REPO / "data" / "binance" / "spot" / "monthly" / "klines"
BTC_DIR = KLINES / "BTCUSD" / "1d"
BTC_2017_Q1 = [BTC_DIR / f"BTCUSD-1d-2017-{m:02d}.csv" for m in (1, 2, 3)]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """Run `backtest run ... --json` and return the parsed object (exit code must be 0)."""
    code = main(["run", *args, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def read_concatenated(files: list[Path]) -> Candles:
    """Read monthly kline files with the core reader and join them (independently of the CLI)."""
    parts = [read_binance_klines(f) for f in files]
    return Candles(
        symbol=parts[0].symbol,
        interval=parts[0].interval,
        open_time=np.concatenate([p.open_time for p in parts]),
        **{c: np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS},
    )


def hand_sma_cross(files: list[Path], fast: int, slow: int, fill: str) -> tuple[int, bool, float]:
    """Replay sma_cross bar by bar in plain Python: long only, all-in, fractional, no fees.

    Return the number of entries, whether the last one is still open after the last bar, final equity.
    """
    rows = [row for f in files for row in csv.reader(f.open())]
    opens, closes = [float(r[1]) for r in rows], [float(r[4]) for r in rows]

    def sma(t: int, n: int) -> float:
        return sum(closes[t - n + 1 : t + 1]) / n

    cash, units, entries = 1_000_000.0, 0.0, 0
    for t in range(slow, len(closes)):
        price = closes[t] if fill == "close" else (opens[t + 1] if t + 1 < len(closes) else None)
        if price is None:
            break
        up = sma(t - 1, fast) < sma(t - 1, slow) and sma(t, fast) > sma(t, slow)
        down = sma(t - 1, fast) > sma(t - 1, slow) and sma(t, fast) < sma(t, slow)
        if up and units == 0.0:
            units, cash, entries = cash / price, 0.0, entries + 1
        elif down and units > 0.0:
            cash, units = units * price, 0.0
    return entries, units > 0.0, cash + units * closes[-1]


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_three_monthly_files_match_a_hand_replay_of_the_crossovers(
    capsys: pytest.CaptureFixture[str], fill: str
) -> None:
    got = run_json(
        capsys, "--data", *map(str, BTC_2017_Q1), "--param", "fast=3", "--param", "slow=7", "--fee", "0",
        "--fill", fill,
    )  # fmt: skip
    entries, still_open, final = hand_sma_cross(BTC_2017_Q1, 3, 7, fill)
    assert got["bars"] == 90  # Jan + Feb + Mar 2017
    # trade_count is the closed trades; a position open after the last bar is open_trades apart
    assert (got["trade_count"], got["open_trades"]) == (entries - still_open, int(still_open))
    assert np.isclose(got["final_equity"], final, rtol=1e-12, atol=0)
    if fill == "next_open":
        assert (entries, still_open) == (6, True)
        assert np.isclose(got["final_equity"], 961_338.1161124328, rtol=1e-12)


def test_json_equals_run_backtest_on_the_same_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(BTC_DIR.glob("*.csv"))
    got = run_json(capsys, "--data", str(BTC_DIR), "--param", "fast=10", "--param", "slow=30", "--fee", "0")
    config = BacktestConfig(
        strategy="sma_cross",
        params={"fast": 10, "slow": 30},
        symbols=["BTCUSD"],
        interval="1d",
        fees=FeeModel(maker=0.0, taker=0.0),
    )
    expected = run_backtest(config, {"BTCUSD": read_concatenated(files)})
    assert {k: got[k] for k in expected.metrics.model_dump()} == expected.metrics.model_dump()
    assert got["settings"] == config.model_dump(mode="json", by_alias=True)
    assert got["bars"] == 1865
    assert got["data"]["BTCUSD"]["first_open_time"] == "2014-11-28T00:00:00Z"
    assert got["data"]["BTCUSD"]["last_open_time"] == "2020-01-17T00:00:00Z"
    assert len(got["data"]["BTCUSD"]["files"]) == 63
    for key in (
        "final_equity",
        "total_return_pct",
        "trade_count",
        "win_rate_pct",
        "max_drawdown_pct",
        "sharpe",
    ):
        assert key in got


def test_plain_ohlcv_csv_gives_the_same_result_as_the_kline_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [row for f in BTC_2017_Q1 for row in csv.reader(f.open())]
    plain = tmp_path / "btc.csv"
    with plain.open("w") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for r in rows:
            day = np.datetime64(int(r[0]), "ms").astype("datetime64[D]")
            handle.write(f"{day}T00:00:00Z,{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n")
    args = ("--param", "fast=3", "--param", "slow=7", "--fee", "0.001")
    from_plain = run_json(capsys, "--data", str(plain), "--symbol", "BTCUSD", *args)
    from_klines = run_json(capsys, "--data", *map(str, BTC_2017_Q1), *args)
    assert from_plain["settings"]["interval"] == "1d"  # inferred from the spacing of the rows
    assert from_plain["final_equity"] == from_klines["final_equity"]
    assert from_plain["trade_count"] == from_klines["trade_count"] == 5  # and 1 still open
    assert from_plain["open_trades"] == from_klines["open_trades"] == 1
    assert from_plain["fees_paid"] > 0


def test_a_folder_of_three_symbols_runs_them_together_with_shared_cash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = run_json(capsys, "--data", str(KLINES), "--size", "0.3", "--fee", "0")
    assert got["settings"]["symbols"] == ["BTCUSD", "ETHUSD", "LTCUSD"]
    assert {s: d["bars"] for s, d in got["data"].items()} == {"BTCUSD": 1865, "ETHUSD": 788, "LTCUSD": 925}
    assert got["trade_count"] == sum(s["trade_count"] for s in got["per_symbol"])
    parallel = run_json(capsys, "--data", str(KLINES), "--size", "0.3", "--fee", "0", "--parallel", "3")
    assert {k: v for k, v in parallel.items() if k != "settings"} == {
        k: v for k, v in got.items() if k != "settings"
    }


def test_a_quoted_glob_selects_the_same_files_as_the_folder(capsys: pytest.CaptureFixture[str]) -> None:
    by_glob = run_json(capsys, "--data", str(BTC_DIR / "BTCUSD-1d-2018-*.csv"))
    assert by_glob["bars"] == 365
    assert by_glob["data"]["BTCUSD"]["first_open_time"] == "2018-01-01T00:00:00Z"


def test_start_and_end_cut_the_bars_end_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    got = run_json(capsys, "--data", str(BTC_DIR), "--start", "2018-01-01", "--end", "2019-01-01T00:00:00Z")
    assert got["bars"] == 365
    assert got["settings"]["start"] == "2018-01-01T00:00:00Z"


def test_options_reach_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    got = run_json(
        capsys, "--data", *map(str, BTC_2017_Q1), "--cash", "5000", "--fee", "0.00075", "--fill", "close",
        "--size", "0.5", "--slippage-bps", "2.5", "--allow-short", "--strategy", "momentum",
    )  # fmt: skip
    settings = got["settings"]
    assert settings["strategy"] == "momentum"
    assert settings["cash"] == 5000.0
    assert settings["fees"] == {"maker": 0.00075, "taker": 0.00075}
    assert (settings["fill"], settings["size"], settings["slippage_bps"]) == ("close", 0.5, 2.5)
    assert settings["allow_short"] is True
    assert got["start_equity"] == 5000.0


def test_summary_table_shows_the_metrics_of_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    got = run_json(capsys, "--data", *map(str, BTC_2017_Q1), "--param", "fast=3", "--param", "slow=7")
    assert main(["run", "--data", *map(str, BTC_2017_Q1), "--param", "fast=3", "--param", "slow=7"]) == 0
    table = capsys.readouterr().out
    assert f"Final equity                  {got['final_equity']:,.2f}" in table
    assert "Trades                        5\nStill open (not counted)      1\n" in table
    assert "Data BTCUSD 1d                90 bars 2017-01-01T00:00:00Z .. 2017-03-31T00:00:00Z" in table


def test_params_parse_integers_floats_booleans_and_text() -> None:
    parsed = parse_params(["fast=10", "ratio=0.5", "tiny=1e-3", "neg=-2", "flag=true", "mode=ema"])
    assert parsed == {"fast": 10, "ratio": 0.5, "tiny": 0.001, "neg": -2, "flag": True, "mode": "ema"}
    assert type(parsed["fast"]) is int
