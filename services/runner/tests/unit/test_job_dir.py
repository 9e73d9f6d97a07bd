"""The job directory: job.json + candles/<SYMBOL>.npz, readable by the sandbox user, removed after."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from backtest_core.contracts import SandboxJob
from backtest_core.model.candles import Candles, read_candles
from backtest_core.model.config import BacktestConfig
from backtest_runner.job_dir import remove_job_dir, write_job_dir

pytestmark = pytest.mark.unit

DAY_NS = 86_400_000_000_000


def _candles(symbol: str) -> Candles:
    n = 5
    close = np.array([100.0, 101.0, 99.5, 102.0, 103.25])
    return Candles(
        symbol,
        "1d",
        np.arange(n, dtype=np.int64) * DAY_NS,
        close,
        close + 1,
        close - 1,
        close,
        np.full(n, 7.0),
    )


def test_job_dir_holds_the_job_and_candles_world_readable(tmp_path: Path) -> None:
    job = SandboxJob(
        task_id="a" * 32, config=BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT", "ETHUSDT"])
    )
    candles = {"BTCUSDT": _candles("BTCUSDT"), "ETHUSDT": _candles("ETHUSDT")}

    job_dir = write_job_dir(tmp_path / "jobs", job, candles)

    assert SandboxJob.model_validate_json((job_dir / "job.json").read_text()) == job
    assert sorted(p.name for p in (job_dir / "candles").iterdir()) == ["BTCUSDT.npz", "ETHUSDT.npz"]
    back = read_candles(job_dir / "candles" / "ETHUSDT.npz")
    assert back.close.tolist() == [100.0, 101.0, 99.5, 102.0, 103.25]
    assert back.open_time.tolist() == [0, DAY_NS, 2 * DAY_NS, 3 * DAY_NS, 4 * DAY_NS]
    for path in [job_dir, job_dir / "candles"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
    for path in [job_dir / "job.json", *(job_dir / "candles").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_removing_the_job_dir_deletes_everything(tmp_path: Path) -> None:
    job = SandboxJob(task_id="b" * 32, config=BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT"]))
    job_dir = write_job_dir(tmp_path, job, {"BTCUSDT": _candles("BTCUSDT")})

    remove_job_dir(job_dir)

    assert list(tmp_path.iterdir()) == []
