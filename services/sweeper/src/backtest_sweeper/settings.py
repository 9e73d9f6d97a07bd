"""The sweeper's settings, from SWEEPER_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where NATS and MongoDB are, and how many trials of one sweep are out at once."""

    model_config = SettingsConfigDict(env_prefix="SWEEPER_", frozen=True, extra="forbid")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="one server URL, or a cluster's nodes comma-separated"
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the streams this service declares (3 on a 3-node cluster)",
    )
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongodb_database: str = "backtest"
    trials_in_flight: int = Field(
        default=256,
        ge=1,
        le=1000,
        description="trials of one sweep submitted and not ended at once; the scheduler's per-user "
        "admission then shares the runners among users",
    )
    chunk_bar_trials: int = Field(
        default=25_000_000,
        ge=1,
        description="engine work of one chunk of trials (one task, one sandbox run), in bars x trials: a "
        "sweep's trials are split evenly into the fewest chunks of at most this and 64 trials",
    )
    redelivery_delay_s: float = Field(default=2.0, ge=0, description="wait before a failed message returns")
    resume_every_s: float = Field(
        default=60.0,
        gt=0,
        description="how often every open sweep and walk-forward is resumed (what a sweeper killed between "
        "marking and sending left is sent again by the others; at start too)",
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector URL, e.g. http://otel-collector:4318; None: no export"
    )
