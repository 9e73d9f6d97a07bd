"""The scheduler's settings, from SCHEDULER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where NATS and MongoDB are, how failures are retried, and how many jobs may run at once."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", frozen=True, extra="forbid")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="one server URL, or a cluster's nodes comma-separated"
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the streams and KV buckets this service declares (3 on a 3-node cluster)",
    )
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongodb_database: str = "backtest"
    candles_mongodb_uri: str | None = Field(
        default=None, description="read-only user's URI for candle and symbol reads; None: mongodb_uri"
    )
    max_attempts: int = Field(default=3, ge=1, description="attempts per backtest on infrastructure faults")
    retry_base_delay_s: float = Field(default=1.0, ge=0, description="back-off after the first failure, s")
    retry_max_delay_s: float = Field(default=60.0, ge=0, description="longest back-off, s")
    redelivery_delay_s: float = Field(default=2.0, ge=0, description="wait before a failed message returns")
    task_ttl_s: float = Field(default=30 * 24 * 3600.0, gt=0, description="how long task state is kept, s")
    max_in_flight: int = Field(
        default=128,
        ge=1,
        description="jobs admitted to the runners at once: sum of RUNNER_SLOTS x RUNNER_BATCH_MAX",
    )
    per_user_in_flight: int = Field(
        default=64,
        ge=1,
        description="jobs of one user admitted at once (one full batch); the rest wait, released round robin",
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector URL, e.g. http://otel-collector:4318; None: no export"
    )
