"""The job directory handed to the sandbox: job.json (or batch.json) + candles/<SYMBOL>.npz, readable
by uid 65534."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from backtest_core.contracts import BATCH_FILE, SandboxBatch, SandboxJob
from backtest_core.model.candles import Candles, write_candles

DIR_MODE = 0o755  # the sandbox user (65534) is "other": it needs r-x on dirs, r on files
FILE_MODE = 0o644


def write_job_dir(root: Path, job: SandboxJob | SandboxBatch, candles: Mapping[str, Candles]) -> Path:
    """Create a fresh directory under `root` holding the job (or batch) and its candles; return its path."""
    root.mkdir(parents=True, exist_ok=True)
    first = job.jobs[0] if isinstance(job, SandboxBatch) else job
    job_dir = Path(tempfile.mkdtemp(prefix=f"{first.task_id}-", dir=root))
    try:
        job_dir.chmod(DIR_MODE)
        candle_dir = job_dir / "candles"
        candle_dir.mkdir(mode=DIR_MODE)
        candle_dir.chmod(DIR_MODE)
        for symbol, bars in candles.items():
            path = candle_dir / f"{symbol}.npz"
            write_candles(path, bars)
            path.chmod(FILE_MODE)
        job_path = job_dir / (BATCH_FILE if isinstance(job, SandboxBatch) else "job.json")
        job_path.write_text(job.model_dump_json(by_alias=True), encoding="utf-8")
        job_path.chmod(FILE_MODE)
    except BaseException:
        remove_job_dir(job_dir)
        raise
    return job_dir


def remove_job_dir(job_dir: Path) -> None:
    """Delete a job directory and everything in it; a missing directory is fine."""
    shutil.rmtree(job_dir, ignore_errors=True)
