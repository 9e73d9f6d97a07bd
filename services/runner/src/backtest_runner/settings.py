"""The runner's settings, from RUNNER_* environment variables."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.seccomp import SHIPPED_PROFILE


def default_runner_id(host_name: str) -> str:
    """Return a fresh runner id: the host name (characters other than letters, digits, - and _ as -,
    at most 80) and 8 random hex digits, e.g. `build-7-a1b2c3d4` for host `build.7`."""
    host = re.sub(r"[^-A-Za-z0-9_]", "-", host_name)[:80] or "runner"
    return f"{host}-{secrets.token_hex(4)}"


class RunnerSettings(BaseSettings):
    """Everything a runner process needs; e.g. RUNNER_NATS_URL, RUNNER_SLOTS, RUNNER_MEMORY_MB.

    `runner_id` defaults to the host name plus a random suffix, so any number of runners on one host
    (or in one container image) have distinct ids; the sandbox containers a crashed runner left behind
    are removed by any runner of the same `instance_id` once its heartbeat (NATS KV, TTL
    `heartbeat_ttl_s`) expired, and at start-up by a runner given the same id again. `instance_id`
    names the platform instance: containers labelled with another instance are never touched.
    `work_dir` holds the job directories (default: /tmp/backtest-runner/<runner id>, one per runner) and
    must be a path the Docker engine sees identically (bind mounts are resolved on the engine's host).
    """

    model_config = SettingsConfigDict(env_prefix="RUNNER_", frozen=True, extra="forbid")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="one server URL, or a cluster's nodes comma-separated"
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the streams and KV buckets this service declares (3 on a 3-node cluster)",
    )
    mongodb_uri: str = "mongodb://127.0.0.1:27017/backtest?readPreference=secondaryPreferred"
    mongodb_database: str | None = Field(default=None, description="default: the database in the URI")
    runner_id: str = Field(
        default_factory=lambda: default_runner_id(socket.gethostname()),
        min_length=1,
        max_length=100,
        pattern=r"^[-A-Za-z0-9_]+$",
        description="unique per runner process; a NATS KV key token (letters, digits, - and _)",
    )
    instance_id: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        pattern=r"^[-A-Za-z0-9_]+$",
        description="the platform instance this runner belongs to (sandbox label, heartbeat key prefix)",
    )
    heartbeat_ttl_s: float = Field(
        default=15.0, ge=1.0, description="a runner silent this long is gone; its containers are removed"
    )
    slots: int = Field(default=2, ge=1, le=64, description="sandboxes run at once by this runner")
    batch_max: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="jobs of one user, strategy, interval and range one sandbox runs in turn (1: one each)",
    )
    warm_idle_s: float = Field(
        default=10.0,
        ge=0,
        description="how long a sandbox that ran a batch waits for the next batch of its key (0: never)",
    )
    warm_max: int = Field(default=4, ge=0, le=64, description="warm sandboxes kept idle at once (0: none)")
    max_ack_pending: int = Field(default=256, ge=1, description="consumer-wide in-flight jobs, all runners")
    sandbox_image: str = "backtest-sandbox:latest"
    seccomp_profile: Path = Field(
        default=SHIPPED_PROFILE,
        description="the sandbox's seccomp profile (JSON): Docker's default, io_uring denied",
    )
    work_dir: Path | None = Field(default=None, description="default: /tmp/backtest-runner/<runner id>")
    memory_mb: int = Field(default=1024, ge=32, description="sandbox RAM (+ swap), MiB")
    cpus: float = Field(default=1.0, gt=0, le=64)
    pids_limit: int = Field(default=128, ge=8, le=4096)
    tmpfs_mb: int = Field(default=64, ge=1)
    wall_clock_s: float = Field(default=300.0, gt=0)
    output_limit_bytes: int = Field(default=64 * MIB, ge=4096)
    equity_points_max: int = Field(default=5000, ge=2)
    candle_cache_mb: int = Field(
        default=256,
        ge=0,
        description="memory for candle buckets kept by their hash between jobs (0: load every job's anew)",
    )
    progress_interval_s: float = Field(
        default=0.25,
        ge=0,
        description="min time between progress reports and before the first (a shorter job sends none)",
    )
    progress_step: float = Field(
        default=0.1, gt=0, le=1, description="fraction advance that is always reported"
    )
    fetch_timeout_s: float = Field(default=1.0, gt=0)
    heartbeat_interval_s: float = Field(
        default=5.0, gt=0, description="in_progress() period while a job runs"
    )
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector URL, e.g. http://otel-collector:4318; None: no export"
    )

    def job_root(self) -> Path:
        """Return the directory this runner writes job directories into (its own, by default)."""
        return self.work_dir if self.work_dir is not None else Path("/tmp/backtest-runner") / self.runner_id

    def sandbox_limits(self) -> SandboxLimits:
        """Return the sandbox limits these settings describe."""
        return SandboxLimits(
            memory_bytes=self.memory_mb * MIB,
            cpus=self.cpus,
            pids=self.pids_limit,
            tmpfs_bytes=self.tmpfs_mb * MIB,
            wall_clock_s=self.wall_clock_s,
            output_bytes=self.output_limit_bytes,
        )
