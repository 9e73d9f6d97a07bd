"""The sandbox entry `python -m backtest_core --job-dir DIR`: protocol lines only on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backtest_core.candles import write_candles
from backtest_core.config import BacktestConfig
from backtest_core.contracts import SandboxJob

from .test_strategies import walk

NOISY = """
from backtest_core.strategy import BaseStrategy, NO_SIGNAL

class Noisy(BaseStrategy):
    def decide(self, df, interval, **params):
        print("hello from the strategy")
        if len(df) and df.close[-1] < 0:
            return NO_SIGNAL
        return helper(df)

def helper(df):
    return 1 / 0
"""


def _job(tmp: Path, strategy: object, n: int = 300) -> Path:
    (tmp / "candles").mkdir()
    write_candles(tmp / "candles" / "BTCUSDT.npz", walk(n))
    config = BacktestConfig(strategy=strategy, symbols=["BTCUSDT"], interval="1h")  # type: ignore[arg-type]
    (tmp / "job.json").write_text(
        SandboxJob(task_id="t1", config=config, equity_points_max=50).model_dump_json()
    )
    return tmp


def _run(job_dir: Path) -> tuple[int, list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "backtest_core", "--job-dir", str(job_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_successful_job_prints_progress_then_one_result(tmp_path: Path) -> None:
    code, lines = _run(_job(tmp_path, "sma_cross"))
    assert code == 0
    assert [x["type"] for x in lines[:-1]] == ["progress"] * (len(lines) - 1)
    assert 2 <= len(lines) - 1 <= 110
    assert lines[-1]["type"] == "result"
    assert len(lines[-1]["result"]["equity_curve"]) == 50  # type: ignore[index]


def test_strategy_error_keeps_only_user_frames_and_prints_go_to_stderr(tmp_path: Path) -> None:
    code, lines = _run(_job(tmp_path, {"source": NOISY}))
    assert code == 1
    assert [x["type"] for x in lines][-1] == "error"
    failure = lines[-1]["failure"]
    assert failure["reason"] == "strategy_error"  # type: ignore[index]
    tb = failure["traceback"]  # type: ignore[index]
    assert "ZeroDivisionError" in tb and "helper" in tb and "backtest_core" not in tb


def test_unknown_strategy_is_invalid_strategy(tmp_path: Path) -> None:
    code, lines = _run(_job(tmp_path, "nope"))
    assert (code, lines[-1]["failure"]["reason"]) == (1, "invalid_strategy")  # type: ignore[index]


def test_missing_candles_is_no_data(tmp_path: Path) -> None:
    job = _job(tmp_path, "sma_cross")
    (job / "candles" / "BTCUSDT.npz").unlink()
    code, lines = _run(job)
    assert (code, lines[-1]["failure"]["reason"]) == (1, "no_data")  # type: ignore[index]
