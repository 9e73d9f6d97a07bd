"""Fixtures of the gateway's tests: settings, tokens, the app over TestNatsBroker and in-memory ports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from backtest_core.contracts import CancelBacktest, Stream, Subject, SubmitBacktest
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from backtest_testinfra import load_by_path
from fastapi import FastAPI
from fastapi.testclient import TestClient
from faststream.nats import NatsBroker, NatsMessage, TestNatsBroker

HERE = Path(__file__).resolve().parent
# Test-support modules of this folder, under names unique in the repo: `from gateway_fakes import ...`.
load_by_path("gateway_testdata", HERE / "gateway_testdata.py")
fakes = load_by_path("gateway_fakes", HERE / "fakes")

SECRET = "test-secret-0123456789abcdef-0123456789"
TokenFactory = Callable[..., str]


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1", mongodb_uri="mongodb://unused")


@pytest.fixture
def make_token(settings: GatewaySettings) -> TokenFactory:
    """Sign a token like `backtest token create` does; keyword arguments override claims."""

    def make(user: str = "alice", role: str = "researcher", secret: str = SECRET, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": user,
            "role": role,
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "iat": now,
            "exp": now + 3600,
        }
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm="HS256")

    return make


@dataclass
class Published:
    """Commands the in-memory broker delivered, with their headers."""

    submits: list[SubmitBacktest] = field(default_factory=list)
    cancels: list[CancelBacktest] = field(default_factory=list)
    msg_ids: list[str] = field(default_factory=list)


@dataclass
class Gateway:
    """The app under test with its in-memory collaborators."""

    app: FastAPI
    client: TestClient
    store: fakes.InMemoryTaskStore
    feed: fakes.InMemoryEventFeed
    published: Published
    strategies: fakes.InMemoryStrategyStore
    market: fakes.InMemoryMarketData
    clock: FakeClock
    sweeps: fakes.InMemorySweepStore


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    broker = NatsBroker(settings.nats_url)
    published = Published()

    @broker.subscriber(Subject.SUBMIT, stream=Stream.COMMANDS.value)
    async def on_submit(command: SubmitBacktest, msg: NatsMessage) -> None:
        published.submits.append(command)
        published.msg_ids.append(msg.headers["Nats-Msg-Id"])

    @broker.subscriber(Subject.CANCEL, stream=Stream.COMMANDS.value)
    async def on_cancel(command: CancelBacktest) -> None:
        published.cancels.append(command)

    store, feed = fakes.InMemoryTaskStore(), fakes.InMemoryEventFeed()
    from gateway_testdata import SHIPPED_SYMBOLS, symbol_record

    # the catalog holds the shipped daily candles' coverage, as after `backtest ingest data/binance`
    market = fakes.InMemoryMarketData([symbol_record(symbol) for symbol in SHIPPED_SYMBOLS])
    strategies, clock, sweeps = fakes.InMemoryStrategyStore(), FakeClock(), fakes.InMemorySweepStore()
    app = create_app(
        settings,
        broker=broker,
        store=store,
        feed=feed,
        strategy_store=strategies,
        market=market,
        sweeps=sweeps,
        quotas=fakes.InMemoryQuotaStore(),
        clock=clock,
    )
    async with TestNatsBroker(broker):
        with TestClient(app) as client:
            yield Gateway(app, client, store, feed, published, strategies, market, clock, sweeps)
