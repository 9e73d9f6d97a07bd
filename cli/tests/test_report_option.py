"""`backtest run --report out.html`: the self-contained report of the very run the command printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from backtest_cli.main import main

BTC_DIR = (
    Path(__file__).resolve().parents[2] / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
)


def test_run_writes_the_report_of_the_printed_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.html"
    files = [str(BTC_DIR / f"BTCUSD-1d-2018-{m:02d}.csv") for m in range(1, 13)]
    options = ["--param", "fast=5", "--param", "slow=20", "--json", "--no-progress", "--report", str(out)]
    code = main(["run", "--data", *files, *options])
    assert code == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert f"report written to {out}" in captured.err
    page = out.read_text(encoding="utf-8")
    assert f'data-metric="trade_count">{got["trade_count"]}<' in page
    listed = got["trade_count"] + got["open_trades"]  # the list holds the open position too
    assert f"Trades ({listed})" in page
    assert page.count("<tr><td>BTCUSD</td><td>long</td>") == listed
    assert "2018-01-01T00:00:00Z" in page and "BTCUSD-1d-2018-12.csv" in page
    assert "<h2>Returns by month and year %</h2>" in page and page.count("<tr><td>2018</td>") == 1
    assert not re.search(r"""(src|href)\s*=|<script|https?://""", page)
