"""The gateway's settings, read from the environment with the prefix GATEWAY_ (one Settings per process)."""

from __future__ import annotations

from pathlib import Path

from backtest_core.contracts.auth import (
    ALGORITHM,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    DEFAULT_MAX_LIFETIME_S,
    MIN_SECRET_BYTES,
)
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Where the gateway connects and how it checks tokens.

    `jwt_secret` is the HS256 key shared with `backtest token create` (at least 32 bytes).
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True, extra="ignore")

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
    jwt_secret: SecretStr
    jwt_issuer: str = DEFAULT_ISSUER
    jwt_audience: str = DEFAULT_AUDIENCE
    jwt_leeway_s: float = Field(default=10.0, ge=0, le=300, description="clock skew tolerated, seconds")
    jwt_max_lifetime_s: int = Field(
        default=DEFAULT_MAX_LIFETIME_S,
        ge=60,
        description="longest token accepted: exp - iat (no iat: exp - now), s",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    publish_timeout_s: float = Field(default=5.0, gt=0, description="wait for the JetStream ack, seconds")
    stream_store_wait_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="how long a WebSocket frame waits for the results writer to store it (read-your-writes)",
    )
    page_size_max: int = Field(default=200, ge=1, le=10_000)
    streams_per_user_max: int = Field(default=4, ge=1, le=1_000, description="open WebSockets per user")
    heavy_answers_per_user: int = Field(
        default=1, ge=1, le=64, description="a user's result pages decoded, serialised or sent at once"
    )
    request_body_max_bytes: int = Field(
        default=1_048_576, ge=1_024, le=16_777_216, description="largest HTTP request body accepted, bytes"
    )
    candles_max_bars: int = Field(default=5_000, ge=1, le=1_000_000, description="bars per candles page")
    strategy_source_max_bytes: int = Field(default=100_000, ge=100, le=200_000, description="UTF-8 bytes")
    strategies_per_user_max: int = Field(default=100, ge=1, le=10_000)
    sweep_trials_max: int = Field(default=10_000, ge=1, le=1_000_000, description="trials of one sweep")
    sweeps_open_per_user: int = Field(
        default=2, ge=1, le=1_000, description="a user's sweeps PENDING or RUNNING at once"
    )
    sweep_stream_poll_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="how often WS /sweep/stream and /walkforward/stream read the store",
    )
    submit_rate_per_min: float = Field(default=30.0, gt=0, description="submissions refilled per minute")
    submit_burst: int = Field(default=10, ge=1, description="submissions allowed at once")
    read_rate_per_s: float = Field(default=20.0, gt=0, description="reads refilled per second")
    read_burst: int = Field(default=100, ge=1, description="reads allowed at once")
    login_token_ttl_s: int = Field(
        default=8 * 3600, ge=60, le=7 * 86_400, description="lifetime of a token from POST /auth/login, s"
    )
    login_attempts_per_min: float = Field(
        default=5.0, gt=0, description="sign-ins refilled per minute per name"
    )
    login_burst: int = Field(default=5, ge=1, description="sign-ins allowed at once per user name")
    login_address_per_min: float = Field(
        default=30.0, gt=0, description="sign-ins per minute per client address"
    )
    login_address_burst: int = Field(
        default=20, ge=1, description="sign-ins allowed at once per client address"
    )
    web_dist: Path | None = Field(
        default=None, description="the built dashboard; None: the checkout's web/dist"
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector URL, e.g. http://otel-collector:4318; None: no export"
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        length = len(secret.get_secret_value().encode())
        if length < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes for {ALGORITHM}, was {length} bytes")
        return secret
