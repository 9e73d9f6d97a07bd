"""The sandbox protocol: what the runner hands a container and the lines the container writes back.

The runner mounts a read-only directory at SANDBOX_JOB_DIR holding `job.json` (a SandboxJob) and
`candles/<SYMBOL>.npz` (backtest_core.model.candles.write_candles), runs `python -m backtest_core`, and
reads stdout: one JSON SandboxLine per line, the last one a SandboxResult or SandboxError.
A batch (several jobs of one user with the same strategy, interval and range) is `batch.json` (a
SandboxBatch) instead of `job.json`, with the candles of every symbol any of its jobs names; the jobs
run in order, each ending in its own SandboxResult or SandboxError line, all tagged with task_id.
A job with `trials` (a sweep's chunk) runs each trial's config (the job's config with the trial's params)
on the same candles and ends in one SandboxResult holding a TrialsResult: a trial that fails ends that
trial only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from backtest_core.contracts.messages import MAX_CHUNK_TRIALS, SCHEMA_VERSION, Failure, Stage, TrialSpec
from backtest_core.model.config import BacktestConfig, Frozen
from backtest_core.model.results import TaskResult

SANDBOX_JOB_DIR = "/job"
BATCH_FILE = "batch.json"  # in the job directory instead of job.json: a SandboxBatch


class SandboxJob(Frozen):
    """The input of one sandbox run."""

    schema_version: Literal[1] = SCHEMA_VERSION
    task_id: str
    config: BacktestConfig
    equity_points_max: int = Field(default=5000, ge=2)
    trials: tuple[TrialSpec, ...] = Field(default=(), max_length=MAX_CHUNK_TRIALS)


class SandboxBatch(Frozen):
    """The input of one sandbox run that evaluates several jobs in order, candles read once."""

    schema_version: Literal[1] = SCHEMA_VERSION
    jobs: tuple[SandboxJob, ...] = Field(min_length=1)


class SandboxProgress(Frozen):
    """A progress line; `fraction` in [0, 1]."""

    type: Literal["progress"] = "progress"
    task_id: str | None = None  # the job the line belongs to (None: an image before batches)
    fraction: float = Field(ge=0, le=1)
    stage: Stage


class SandboxResult(Frozen):
    """The final line of a successful run."""

    type: Literal["result"] = "result"
    task_id: str | None = None  # the job the line belongs to (None: an image before batches)
    result: TaskResult


class SandboxError(Frozen):
    """The final line of a failed run (the engine caught the error)."""

    type: Literal["error"] = "error"
    task_id: str | None = None  # the job the line belongs to (None: an image before batches)
    failure: Failure


SandboxLine = Annotated[SandboxProgress | SandboxResult | SandboxError, Field(discriminator="type")]
