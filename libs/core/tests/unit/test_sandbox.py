"""The sandbox entry `python -m backtest_core --job-dir DIR`: protocol lines only on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from backtest_core.contracts import BATCH_FILE, SandboxBatch, SandboxJob, SandboxResult, TrialSpec
from backtest_core.engine.run import run_backtest
from backtest_core.metrics.performance import equity_returns
from backtest_core.model.candles import Candles, read_candles, write_candles
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import TrialsResult, unpack_returns
from backtest_core.model.trade_log import PACKED
from backtest_core.sandbox.entry import load_job

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


def _job(tmp: Path, strategy: object, n: int = 300, symbols: tuple[str, ...] = ("BTCUSDT",)) -> Path:
    (tmp / "candles").mkdir()
    for seed, symbol in enumerate(symbols, start=7):
        write_candles(tmp / "candles" / f"{symbol}.npz", replace(walk(n, seed), symbol=symbol))
    config = BacktestConfig(strategy=strategy, symbols=list(symbols), interval="1h")  # type: ignore[arg-type]
    (tmp / "job.json").write_text(
        SandboxJob(task_id="t1", config=config, equity_points_max=50).model_dump_json()
    )
    return tmp


def _run(job_dir: Path) -> tuple[int, list[dict[str, object]]]:
    code, stdout = _run_raw(job_dir)
    return code, [json.loads(line) for line in stdout.splitlines()]


def _run_raw(job_dir: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "backtest_core", "--job-dir", str(job_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout


# A per-bar strategy (no vectorized path): long after three rising closes, flat after two falling ones.
STREAKS = """
from backtest_core.strategy import BaseStrategy, NO_SIGNAL, Side, Signal

class Streaks(BaseStrategy):
    def get_required_lookback(self):
        return 4

    def decide(self, df, interval, **params):
        c = df.close
        if c[-1] > c[-2] > c[-3] > c[-4]:
            return Signal(Side.BUY, take_profit=c[-1] * 1.02, stop_loss=c[-1] * 0.99)
        if c[-1] < c[-2] < c[-3]:
            return Side.SELL
        return NO_SIGNAL
"""

# Writes a result line claiming a final equity of 1e300 to the first descriptor above 2 that takes it
# (the sandbox entry's protocol stdout, if the strategy can reach it), then exits with code 0.
FORGER = """
import json, os
from backtest_core.strategy import BaseStrategy

class Forger(BaseStrategy):
    def decide(self, df, interval, **params):
        line = json.dumps({"type": "result", "result": {"metrics": {"final_equity": 1e300}}}) + "\\n"
        for fd in sorted(int(fd) for fd in os.listdir("/proc/self/fd")):
            if fd > 2:
                try:
                    os.write(fd, line.encode())
                    break
                except OSError:
                    pass
        print(line)
        os._exit(0)
"""


MALFORMED_BRACE = "frame kind must be one of [1, 2, 3], was 123"


@pytest.mark.parametrize("strategy", ["sma_cross", {"source": STREAKS}], ids=["vectorized", "per_bar"])
def test_the_entrys_result_equals_the_in_process_backtest_exactly(tmp_path: Path, strategy: object) -> None:
    job_dir = _job(tmp_path, strategy, n=2000, symbols=("BTCUSDT", "ETHUSDT"))
    job, candles = load_job(job_dir)
    expected = run_backtest(job.config, candles, equity_points_max=job.equity_points_max)

    code, stdout = _run_raw(job_dir)

    assert code == 0
    assert expected.metrics.trade_count > 10
    assert stdout.splitlines()[-1] == SandboxResult(task_id="t1", result=expected).model_dump_json(
        context=PACKED
    )


def test_a_result_the_strategy_writes_is_never_on_the_entrys_stdout(tmp_path: Path) -> None:
    code, stdout = _run_raw(_job(tmp_path, {"source": FORGER}))

    lines = [json.loads(line) for line in stdout.splitlines()]
    assert "1e+300" not in stdout
    assert code == 1
    # The strategy's JSON went into its own pipe, where '{' (123) is no frame kind.
    assert lines[-1]["failure"] == {
        "reason": "strategy_error",
        "message": f"the strategy process sent a malformed message: {MALFORMED_BRACE}",
        "traceback": None,
    }


def test_progress_moves_with_the_bars_decided_per_symbol_then_the_parts_of_the_run(tmp_path: Path) -> None:
    code, lines = _run(_job(tmp_path, {"source": STREAKS}, n=3000, symbols=("BTCUSDT", "ETHUSDT")))

    progress = [(x["fraction"], x["stage"]) for x in lines if x["type"] == "progress"]
    assert code == 0
    # Per-bar decide() reports every 1,000 bars: 2,997 decided bars per symbol -> 3 reports each, then
    # SIGNALS_END * share of all 6,000 bars (each symbol's reports count its bars, lookback included).
    assert progress == pytest.approx(
        [
            (0.0, "loading"),
            (0.0, "signals"),
            (0.85 * (1000 / 2997) * 3000 / 6000, "signals"),
            (0.85 * (2000 / 2997) * 3000 / 6000, "signals"),
            (0.85 * 3000 / 6000, "signals"),
            (0.85 * (3000 + 3000 * 1000 / 2997) / 6000, "signals"),
            (0.85 * (3000 + 3000 * 2000 / 2997) / 6000, "signals"),
            (0.85, "signals"),
            (0.85, "portfolio"),
            (0.95, "metrics"),
            (1.0, "done"),
        ]
    )


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


KILLED = """
import os, signal
from backtest_core.strategy import BaseStrategy

class Killed(BaseStrategy):
    def decide(self, df, interval, **params):
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _batch(tmp: Path, configs: list[BacktestConfig]) -> Path:
    (tmp / "candles").mkdir()
    write_candles(tmp / "candles" / "BTCUSDT.npz", replace(walk(1500, 7), symbol="BTCUSDT"))
    jobs = tuple(SandboxJob(task_id=f"t{i}", config=c, equity_points_max=50) for i, c in enumerate(configs))
    (tmp / BATCH_FILE).write_text(SandboxBatch(jobs=jobs).model_dump_json())
    return tmp


def _config(strategy: object, symbols: tuple[str, ...] = ("BTCUSDT",), **params: int) -> BacktestConfig:
    return BacktestConfig(strategy=strategy, symbols=list(symbols), interval="1h", params=params)  # type: ignore[arg-type]


def test_a_batch_runs_its_jobs_in_order_each_with_its_own_tagged_lines_and_errors(tmp_path: Path) -> None:
    configs = [
        _config("sma_cross", fast=5, slow=20),
        _config({"source": NOISY}),
        _config("sma_cross", symbols=("BTCUSDT", "ETHUSDT")),  # no ETHUSDT candles in the batch
        _config("sma_cross", fast=12, slow=40),
    ]
    job_dir = _batch(tmp_path, configs)
    candles = {"BTCUSDT": load_job_candles(job_dir)}

    code, lines = _run(job_dir)

    assert code == 0
    finals = [x for x in lines if x["type"] != "progress"]
    assert [(x["task_id"], x["type"]) for x in finals] == [
        ("t0", "result"),
        ("t1", "error"),
        ("t2", "error"),
        ("t3", "result"),
    ]
    assert finals[1]["failure"]["reason"] == "strategy_error"  # type: ignore[index]
    assert finals[2]["failure"] == {  # type: ignore[index]
        "reason": "no_data",
        "message": f"no candles for ETHUSDT: {job_dir / 'candles' / 'ETHUSDT.npz'} does not exist",
        "traceback": None,
    }
    for index in (0, 3):
        expected = run_backtest(configs[index], candles, equity_points_max=50)
        assert expected.metrics.trade_count > 5
        assert SandboxResult.model_validate(finals[index]).result == expected
    # Every progress line names its job, and a job's lines come before its final line.
    order = [x["task_id"] for x in lines]
    assert all(x["task_id"] in {"t0", "t1", "t3"} for x in lines if x["type"] == "progress")
    assert order == sorted(order)


def test_a_strategy_killed_by_sigkill_ends_the_batch_at_once_with_137(tmp_path: Path) -> None:
    job_dir = _batch(tmp_path, [_config("sma_cross"), _config({"source": KILLED}), _config("sma_cross")])

    code, lines = _run(job_dir)

    assert code == 137
    assert [(x["task_id"], x["type"]) for x in lines if x["type"] != "progress"] == [("t0", "result")]
    assert {x["task_id"] for x in lines} == {"t0", "t1"}


def load_job_candles(job_dir: Path) -> Candles:
    return read_candles(job_dir / "candles" / "BTCUSDT.npz")


def test_serve_runs_each_directory_named_on_stdin_until_stdin_ends(tmp_path: Path) -> None:
    (tmp_path / "b0").mkdir()
    (tmp_path / "b1").mkdir()
    first = _batch(tmp_path / "b0", [_config("sma_cross", fast=5, slow=20)])
    second = _batch(tmp_path / "b1", [_config("sma_cross", fast=8, slow=30), _config("sma_cross", fast=9)])
    proc = subprocess.run(
        [sys.executable, "-m", "backtest_core", "--job-dir", str(tmp_path), "--serve"],
        input="b0\n\nb1\n",
        capture_output=True,
        text=True,
        timeout=120,
    )

    finals = [json.loads(line) for line in proc.stdout.splitlines() if '"progress"' not in line]
    assert proc.returncode == 0
    tagged = [(x["task_id"], x["type"]) for x in finals]
    assert tagged == [("t0", "result"), ("t0", "result"), ("t1", "result")]
    for job_dir, final, index in ((first, finals[0], 0), (second, finals[1], 0), (second, finals[2], 1)):
        batch = SandboxBatch.model_validate_json((job_dir / BATCH_FILE).read_text())
        candles = {"BTCUSDT": load_job_candles(job_dir)}
        expected = run_backtest(batch.jobs[index].config, candles, equity_points_max=50)
        assert SandboxResult.model_validate(final).result == expected


def test_serve_refuses_a_name_that_is_not_one_directory_under_the_job_dir(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "backtest_core", "--job-dir", str(tmp_path), "--serve"],
        input="../etc\n",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 1 and proc.stdout == ""
    assert f"--serve: '../etc' is not a directory name in {tmp_path}" in proc.stderr


def test_the_sandbox_entry_runs_a_backtest_without_importing_pandas(tmp_path: Path) -> None:
    """pandas costs ~0.25 s of CPU to import, more than a small backtest: the entry must not need it."""
    job_dir = _batch(tmp_path, [_config("sma_cross", fast=5, slow=20)])
    script = (
        "import io, sys\n"
        "from pathlib import Path\n"
        "from backtest_core.sandbox.entry import run_job\n"
        f"code = run_job(Path({str(job_dir)!r}), io.StringIO())\n"
        "print(code, 'pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert proc.stdout.split() == ["0", "False"], proc.stderr


PICKY = """
from backtest_core.strategy import BaseStrategy, NO_SIGNAL, Side

class Picky(BaseStrategy):
    def get_required_lookback(self):
        return 6

    def decide(self, df, interval, window=3, **params):
        if window == 4:
            raise RuntimeError("window 4 is unlucky")
        c = df.close
        if c[-1] > c[-window]:
            return Side.BUY
        if c[-1] < c[-2] < c[-3]:
            return Side.SELL
        return NO_SIGNAL
"""


def _chunk(tmp: Path, strategy: object, trials: list[dict[str, int]]) -> Path:
    (tmp / "candles").mkdir()
    write_candles(tmp / "candles" / "BTCUSDT.npz", replace(walk(1500, 7), symbol="BTCUSDT"))
    specs = tuple(TrialSpec(trial=10 + i, params=p) for i, p in enumerate(trials))
    job = SandboxJob(task_id="c1", config=_config(strategy), equity_points_max=50, trials=specs)
    (tmp / "job.json").write_text(job.model_dump_json())
    return tmp


def test_a_chunk_runs_each_trial_and_ends_in_one_result_of_their_metrics_and_returns(tmp_path: Path) -> None:
    trials = [{"fast": 5, "slow": 20}, {"fast": 30, "slow": 10}, {"fast": 12, "slow": 40}]
    job_dir = _chunk(tmp_path, "sma_cross", trials)
    candles = {"BTCUSDT": load_job_candles(job_dir)}

    code, lines = _run(job_dir)

    assert code == 0
    assert [x["type"] for x in lines] == ["progress"] * 3 + ["result"]
    assert [x["fraction"] for x in lines[:3]] == pytest.approx([1 / 3, 2 / 3, 1.0])
    result = SandboxResult.model_validate(lines[-1]).result
    assert isinstance(result, TrialsResult)
    assert [(o.trial, o.state) for o in result.outcomes] == [
        (10, "SUCCESS"),
        (11, "SKIPPED"),
        (12, "SUCCESS"),
    ]
    assert result.outcomes[1].reason is not None and "fast" in result.outcomes[1].reason
    for outcome, params in zip(result.outcomes[::2], trials[::2], strict=True):
        expected = run_backtest(_config("sma_cross", **params), candles, equity_points_max=50)
        assert expected.metrics.trade_count > 5
        assert outcome.metrics == expected.metrics
        assert outcome.returns is not None
        returns = unpack_returns(outcome.returns)
        assert len(returns) == 49
        curve = np.array([point.equity for point in expected.equity_curve])
        assert returns.tolist() == equity_returns(curve).tolist()  # bit for bit: packed as float64


def test_a_trial_that_fails_ends_as_failure_with_the_reason_and_the_chunk_goes_on(tmp_path: Path) -> None:
    job_dir = _chunk(tmp_path, {"source": PICKY}, [{"window": 3}, {"window": 4}, {"window": 5}])

    code, lines = _run(job_dir)

    assert code == 0
    result = SandboxResult.model_validate(lines[-1]).result
    assert isinstance(result, TrialsResult)
    assert [o.state for o in result.outcomes] == ["SUCCESS", "FAILURE", "SUCCESS"], result.outcomes
    assert result.outcomes[1].reason is not None
    assert result.outcomes[1].reason.startswith("strategy_error: ")
    assert "window 4 is unlucky" in result.outcomes[1].reason
    assert result.outcomes[0].metrics != result.outcomes[2].metrics
