"""The sandbox entry: read a job directory, run the backtest, write JSON lines to the real stdout.

Protocol (backtest_core.contracts): `<job_dir>/job.json` is a SandboxJob, `<job_dir>/candles/<SYMBOL>.npz`
holds each symbol's candles. stdout carries only SandboxLine JSON: SandboxProgress lines (at most
~100), then exactly one SandboxResult (exit code 0) or SandboxError (exit code 1). A `batch.json`
(SandboxBatch) instead runs its jobs in order, each with its own lines, and exits 0 at the end.
`--serve` keeps the process for more: it reads directory names from stdin, one per line, and runs
each `<job_dir>/<name>` as above (the runner's warm sandbox: the next batch of the same user and
strategy pays no container or interpreter start), until stdin ends.
This process is the only writer: a user's strategy (anything but a built-in) runs in a forked child
(backtest_core.sandbox.strategy_process), one per job, that sends only signals over its own pipe and whose
stdout is stderr; a built-in, the engine's own code, runs here. A child killed by SIGKILL (the
kernel's OOM killer) ends this process with exit code 137 and no line, as an OOM-killed sandbox would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from pydantic import ValidationError

from backtest_core import __version__
from backtest_core.contracts import (
    BATCH_FILE,
    Failure,
    FailureReason,
    SandboxBatch,
    SandboxError,
    SandboxJob,
    SandboxProgress,
    SandboxResult,
)
from backtest_core.engine.market import shared_market
from backtest_core.engine.orchestrator import SignalSource, in_process_signals
from backtest_core.engine.run import curve_points, run_backtest
from backtest_core.engine.trials import failure_of, run_trial
from backtest_core.errors import BacktestError, DataError
from backtest_core.metrics.performance import equity_returns
from backtest_core.model.candles import Candles, read_candles
from backtest_core.model.config import BacktestConfig, BuiltinStrategy
from backtest_core.model.results import TrialOutcome, TrialsResult, pack_returns
from backtest_core.model.trade_log import PACKED
from backtest_core.sandbox.signal_wire import MAX_MESSAGE, MAX_TRACEBACK
from backtest_core.sandbox.strategy_process import forked_signals

SIGKILL_EXIT = 128 + signal.SIGKILL


@contextlib.contextmanager
def protocol_stdout() -> Iterator[TextIO]:
    """Yield a writer on the original stdout while fd 1 and sys.stdout point at stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    old = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield out
    finally:
        sys.stdout = old
        out.flush()
        out.close()
        os.dup2(saved, 1)
        os.close(saved)


def _error(
    out: TextIO, task_id: str | None, reason: FailureReason, message: str, tb: str | None = None
) -> int:
    failure = Failure(
        reason=reason, message=message[:MAX_MESSAGE], traceback=None if tb is None else tb[-MAX_TRACEBACK:]
    )
    out.write(SandboxError(task_id=task_id, failure=failure).model_dump_json() + "\n")
    return 1


def _read_candles(job_dir: Path, symbols: Iterable[str], cache: dict[str, Candles]) -> dict[str, Candles]:
    """Return the candles of `symbols`, each file read once per process (DataError when one is missing)."""
    for symbol in symbols:
        if symbol not in cache:
            path = job_dir / "candles" / f"{symbol}.npz"
            if not path.is_file():
                raise DataError(f"no candles for {symbol}: {path} does not exist")
            cache[symbol] = read_candles(path)
    return {symbol: cache[symbol] for symbol in symbols}


def load_job(job_dir: Path) -> tuple[SandboxJob, dict[str, Candles]]:
    """Read job.json and the candles of every configured symbol (DataError when one is missing)."""
    job = SandboxJob.model_validate_json((job_dir / "job.json").read_text(encoding="utf-8"))
    return job, _read_candles(job_dir, job.config.symbols, {})


def signal_source(config: BacktestConfig) -> SignalSource:
    """Where a job's signals are computed: a built-in strategy (the engine's own code) in this process,
    any other (uploaded, or a module named by the user) in a forked child that can only send signals."""
    return in_process_signals if isinstance(config.strategy, str | BuiltinStrategy) else forked_signals


def _run_one(job: SandboxJob, candles: dict[str, Candles], out: TextIO) -> int:
    """Run one job on its candles, writing its progress and final line; return 0, 1 or SIGKILL_EXIT."""

    def progress(fraction: float, stage: str) -> None:
        out.write(
            SandboxProgress(task_id=job.task_id, fraction=fraction, stage=stage).model_dump_json() + "\n"
        )

    if job.trials:
        return _run_trials(job, candles, out, progress)
    try:
        result = run_backtest(
            job.config,
            candles,
            on_progress=progress,
            equity_points_max=job.equity_points_max,
            signal_source=signal_source(job.config),
        )
    except BacktestError as exc:
        if exc.ends_run:
            out.flush()
            return SIGKILL_EXIT
        return _error(out, job.task_id, *failure_of(exc))
    line = SandboxResult(task_id=job.task_id, result=result)
    out.write(line.model_dump_json(context=PACKED) + "\n")  # trades packed
    return 0


def _run_trials(
    job: SandboxJob, candles: dict[str, Candles], out: TextIO, progress: Callable[[float, str], None]
) -> int:
    """Run each trial of a chunk on the same candles (engine.trials: a refused one SKIPPED, a failed one
    FAILURE, the others go on); one SandboxResult with every trial's outcome. A strategy killed by
    SIGKILL ends the run (SIGKILL_EXIT), as in a batch."""
    outcomes: list[TrialOutcome] = []
    source = signal_source(job.config)
    market = shared_market(job.config, candles)  # params change the strategy, never the bars it reads
    for done, trial in enumerate(job.trials):
        curve: list[np.ndarray] = []
        try:
            run = run_trial(
                job.config,
                trial.params,
                candles,
                equity_points_max=2,  # the result's curve is not sent: its returns are, from `curve`
                signal_source=source,
                on_equity=lambda _, equity, kept=curve: kept.append(equity),
                market=market,
            )
        except BacktestError:  # ends_run: the strategy's process was killed
            out.flush()
            return SIGKILL_EXIT
        if run.result is None:
            outcomes.append(TrialOutcome(trial=trial.trial, state=run.state, reason=run.reason))
        else:
            equity = curve[0][curve_points(len(curve[0]), job.equity_points_max)]
            returns = pack_returns(equity_returns(equity))  # the returns of the curve the job returns
            outcomes.append(
                TrialOutcome(trial=trial.trial, state="SUCCESS", metrics=run.result.metrics, returns=returns)
            )
        progress((done + 1) / len(job.trials), "trials")
    line = SandboxResult(
        task_id=job.task_id, result=TrialsResult(engine_version=__version__, outcomes=outcomes)
    )
    out.write(line.model_dump_json() + "\n")
    return 0


def run_job(job_dir: Path, out: TextIO) -> int:
    """Run the job (job.json) or the batch (batch.json) in job_dir, writing protocol lines to `out`;
    return the process exit code."""
    if (job_dir / BATCH_FILE).is_file():
        return run_batch(job_dir, out)
    try:
        job, candles = load_job(job_dir)
    except DataError as exc:
        return _error(out, None, FailureReason.NO_DATA, str(exc))
    except (OSError, ValidationError, ValueError) as exc:
        return _error(out, None, FailureReason.INVALID_CONFIG, f"cannot read job: {exc}")
    return _run_one(job, candles, out)


def run_batch(job_dir: Path, out: TextIO) -> int:
    """Run every job of batch.json in order, each symbol's candles read once.

    A job's error ends that job only (exit code 0 at the end); a strategy killed by SIGKILL (out of
    memory) ends the whole run at once with SIGKILL_EXIT, so the runner sees which job was running.
    """
    batch = SandboxBatch.model_validate_json((job_dir / BATCH_FILE).read_text(encoding="utf-8"))
    cache: dict[str, Candles] = {}
    for job in batch.jobs:
        try:
            candles = _read_candles(job_dir, job.config.symbols, cache)
        except DataError as exc:
            _error(out, job.task_id, FailureReason.NO_DATA, str(exc))
            continue
        if _run_one(job, candles, out) == SIGKILL_EXIT:
            return SIGKILL_EXIT
    return 0


def serve(job_dir: Path, requests: Iterable[str], out: TextIO) -> int:
    """Run `job_dir/<name>` for each name read from `requests` until they end; return the exit code.

    A name is one path component (the runner writes it; anything else ends the process with a clear
    error, never a read outside `job_dir`); a strategy killed by SIGKILL ends the process with
    SIGKILL_EXIT, as in a batch.
    """
    for request in requests:
        name = request.strip()
        if not name:
            continue
        if Path(name).name != name or name in (".", ".."):
            raise SystemExit(f"--serve: {name!r} is not a directory name in {job_dir}")
        code = run_job(job_dir / name, out)
        out.flush()
        if code == SIGKILL_EXIT:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `[--job-dir DIR] [--serve]` and run the job (or serve jobs); return the exit code."""
    import argparse

    from backtest_core.contracts import SANDBOX_JOB_DIR

    parser = argparse.ArgumentParser(
        prog="python -m backtest_core", description="Run one sandboxed backtest job."
    )
    parser.add_argument(
        "--job-dir", default=SANDBOX_JOB_DIR, type=Path, help="directory with job.json and candles/"
    )
    parser.add_argument(
        "--serve", action="store_true", help="run the job directories under DIR named on stdin, one a line"
    )
    args = parser.parse_args(argv)
    with protocol_stdout() as out:
        return serve(args.job_dir, sys.stdin, out) if args.serve else run_job(args.job_dir, out)
