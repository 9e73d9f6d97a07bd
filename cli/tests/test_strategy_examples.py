"""The three worked examples of docs/strategies.md run with `backtest run` on the shipped BTCUSD daily bars.

Each pins the run's final equity and trade counts (computed once with the engine; a change is a change
of results) and checks what the guide says about the example.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backtest_cli.main import main
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig
from backtest_core.model.strategy_package import read_strategy_package
from backtest_testinfra import shipped_candles

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "strategy_examples"
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"


def _run(capsys: pytest.CaptureFixture[str], strategy: Path, *options: str) -> dict[str, Any]:
    code = main(
        ["run", "--data", str(BTC_DIR), "--strategy", str(strategy), "--json", "--no-progress", *options]
    )
    assert code == 0
    got: dict[str, Any] = json.loads(capsys.readouterr().out)
    return got


def _sides_and_exits(got: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((t["side"], t["exit_reason"]) for t in got["trades"])


def test_example_1_breakout_exits_only_at_its_take_profit_or_stop(capsys: pytest.CaptureFixture[str]) -> None:
    got = _run(capsys, EXAMPLES / "breakout_with_stops.py")
    assert np.isclose(got["final_equity"], 10_373_453.55744504, rtol=1e-12)
    assert (got["trade_count"], got["open_trades"]) == (82, 1)
    # It never sells: every closed trade ends at its target or its stop; the last one is still open.
    assert _sides_and_exits(got) == {
        ("long", "take_profit"): 46,
        ("long", "stop_loss"): 36,
        ("long", "end_of_data"): 1,
    }


def test_example_2_pandas_zscore_goes_long_and_short_with_stops(capsys: pytest.CaptureFixture[str]) -> None:
    got = _run(capsys, EXAMPLES / "zscore_pandas.py", "--allow-short")
    assert np.isclose(got["final_equity"], 40_934.31333434435, rtol=1e-12)
    assert (got["trade_count"], got["open_trades"]) == (108, 1)
    assert _sides_and_exits(got) == {
        ("short", "stop_loss"): 56,
        ("long", "stop_loss"): 22,
        ("long", "signal"): 17,
        ("short", "signal"): 13,
        ("short", "end_of_data"): 1,
    }
    long_only = _run(capsys, EXAMPLES / "zscore_pandas.py")
    assert {side for side, _ in _sides_and_exits(long_only)} == {"long"}


def test_example_3_package_runs_and_its_vectorized_path_equals_decide_bar_by_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got = _run(capsys, EXAMPLES / "roc_momentum")
    assert np.isclose(got["final_equity"], 15_042_172.03463514, rtol=1e-12)
    assert (got["trade_count"], got["open_trades"]) == (98, 1)
    strategy = read_strategy_package(EXAMPLES / "roc_momentum")
    config = BacktestConfig(strategy=strategy, symbols=["BTCUSD"], interval="1d")
    candles = {"BTCUSD": shipped_candles("BTCUSD")}
    vectorized = run_backtest(config, candles, signal_path="vectorized")
    per_bar = run_backtest(config, candles, signal_path="per_bar")
    assert vectorized.metrics == per_bar.metrics
    assert list(vectorized.trades) == list(per_bar.trades)
    assert vectorized.metrics.final_equity == got["final_equity"]


def test_example_3_refuses_a_look_back_beyond_its_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--data", str(BTC_DIR), "--strategy", str(EXAMPLES / "roc_momentum"),
                 "--param", "bars=400", "--no-progress"])  # fmt: skip
    assert code != 0
    assert "bars must be <= 365, was bars=400" in capsys.readouterr().err
