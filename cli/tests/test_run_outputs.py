"""`backtest run`: every trade and every bar's equity in --json, --trades and --equity; the Strategy row."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from backtest_cli.main import main

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
BTC_2017_Q1 = [str(BTC_DIR / f"BTCUSD-1d-2017-{m:02d}.csv") for m in (1, 2, 3)]
SMA_3_7 = ("--data", *BTC_2017_Q1, "--param", "fast=3", "--param", "slow=7", "--fee", "0")


def test_json_holds_every_trade_and_the_equity_of_every_bar(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMA_3_7, "--json", "--no-progress"]) == 0
    got = json.loads(capsys.readouterr().out)
    # test_run_command's hand replay: 6 entries, final equity 961,338.1161124328 over 90 daily bars; the
    # sixth is still open after the last bar: in the list marked open, not a closed trade.
    assert len(got["trades"]) == 6
    assert (got["trade_count"], got["open_trades"]) == (5, 1)
    assert [t["open"] for t in got["trades"]] == [False] * 5 + [True]
    assert got["trades"][-1]["exit_reason"] == "end_of_data"
    assert len(got["equity_curve"]) == got["bars"] == 90
    first, last = got["equity_curve"][0], got["equity_curve"][-1]
    assert first == {"time": "2017-01-01T00:00:00Z", "equity": 1_000_000.0}
    assert last["time"] == "2017-03-31T00:00:00Z"
    assert np.isclose(last["equity"], 961_338.1161124328, rtol=1e-12)
    # Without fees the trades' pnl add up to the equity's change (the last one may be marked open).
    assert np.isclose(sum(t["pnl"] for t in got["trades"]), last["equity"] - 1_000_000.0, rtol=1e-12)
    assert set(got["trades"][0]) == {
        "symbol", "side", "units", "entry_time", "entry_price", "exit_time", "exit_price",
        "exit_reason", "pnl", "return_pct", "fees", "bars_held", "open",
    }  # fmt: skip


def test_trades_and_equity_csv_read_back_to_the_json_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", *SMA_3_7, "--json", "--no-progress"]) == 0
    got = json.loads(capsys.readouterr().out)
    trades, equity = tmp_path / "trades.csv", tmp_path / "equity.csv"
    assert main(["run", *SMA_3_7, "--no-progress", "--trades", str(trades), "--equity", str(equity)]) == 0
    err = capsys.readouterr().err
    assert f"6 trades written to {trades}" in err and f"90 equity points written to {equity}" in err
    rows = list(csv.DictReader(trades.open()))
    assert [r["entry_time"] for r in rows] == [t["entry_time"] for t in got["trades"]]
    assert [float(r["pnl"]) for r in rows] == [t["pnl"] for t in got["trades"]]  # every digit kept
    assert [int(r["bars_held"]) for r in rows] == [t["bars_held"] for t in got["trades"]]
    assert [r["open"] for r in rows] == ["False"] * 5 + ["True"]
    points = list(csv.DictReader(equity.open()))
    assert [(p["time"], float(p["equity"])) for p in points] == [
        (p["time"], p["equity"]) for p in got["equity_curve"]
    ]


def test_strategy_row_names_file_class_and_code_fingerprint_never_the_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = (
        "from backtest_core.strategy import BaseStrategy, NO_SIGNAL\n"
        "class Idle(BaseStrategy):\n"
        "    def decide(self, df, interval, **params):\n"
        "        return NO_SIGNAL\n"
    )
    path = tmp_path / "idle.py"
    path.write_text(source)
    version = hashlib.sha256(source.encode()).hexdigest()[:8]
    for given in (str(path), f"{path}:Idle"):
        assert main(["run", "--data", BTC_2017_Q1[0], "--strategy", given, "--no-progress"]) == 0
        table = capsys.readouterr().out
        assert f"Strategy                      idle.py:Idle v{version} -\n" in table
        assert "NO_SIGNAL" not in table


def test_json_and_table_hold_the_returns_of_each_month_and_year(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMA_3_7, "--json", "--no-progress"]) == 0
    got = json.loads(capsys.readouterr().out)
    months = got["monthly_returns"]
    assert [m["period"] for m in months] == ["2017-01", "2017-02", "2017-03"]
    # The months compound to the year, and the one year is the whole run (start cash to last close).
    assert np.prod([1 + m["return_pct"] / 100 for m in months]) == pytest.approx(
        1 + got["total_return_pct"] / 100
    )
    assert got["yearly_returns"] == [{"period": "2017", "return_pct": pytest.approx(got["total_return_pct"])}]
    # January: the equity at its last close over the start cash, from the JSON's own curve.
    jan_31 = next(p["equity"] for p in got["equity_curve"] if p["time"] == "2017-01-31T00:00:00Z")
    assert months[0]["return_pct"] == pytest.approx(100 * (jan_31 / 1_000_000 - 1), rel=1e-12)
    assert main(["run", *SMA_3_7, "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert f"Return 2017 %                 {got['total_return_pct']:.2f}\n" in table
