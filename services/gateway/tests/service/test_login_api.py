"""POST /auth/login against users stored in the MongoDB-compatible server, as `backtest user add` does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from backtest_core.contracts import new_id
from backtest_core.contracts.accounts import user_document
from backtest_gateway.auth import decode_token
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from fastapi.testclient import TestClient
from faststream.nats import NatsBroker, TestNatsBroker
from gateway_fakes import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryQuotaStore,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)
from pymongo import MongoClient

pytestmark = pytest.mark.service

SECRET = "login-secret-0123456789abcdef-0123456789"
PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(mongo_uri: str) -> GatewaySettings:
    return GatewaySettings(
        jwt_secret=SECRET,
        nats_url="nats://127.0.0.1:1",
        mongodb_uri=mongo_uri,
        mongodb_database=f"login_{new_id()[:12]}",
        login_token_ttl_s=3600,
        login_burst=3,
        login_attempts_per_min=1.0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(settings: GatewaySettings, clock: FakeClock) -> Iterator[TestClient]:
    with MongoClient(settings.mongodb_uri) as mongo:
        users = mongo[settings.mongodb_database]["users"]
        users.insert_one(user_document("ana", "researcher", PASSWORD))
        users.insert_one(user_document("vic", "viewer", PASSWORD + "!"))
        broker = NatsBroker(settings.nats_url)
        app = create_app(
            settings,
            broker=broker,
            store=InMemoryTaskStore(),
            feed=InMemoryEventFeed(),
            strategy_store=InMemoryStrategyStore(),
            market=InMemoryMarketData(),
            quotas=InMemoryQuotaStore(),
            clock=clock,
        )
        async with TestNatsBroker(broker):
            with TestClient(app) as test_client:
                yield test_client
        mongo.drop_database(settings.mongodb_database)


def test_right_password_returns_the_token_the_api_accepts(
    client: TestClient, settings: GatewaySettings
) -> None:
    before = int(time.time())
    response = client.post("/auth/login", json={"username": "ana", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["user"], body["role"], body["token_type"], body["expires_in"]) == (
        "ana",
        "researcher",
        "bearer",
        3600,
    )
    principal = decode_token(body["access_token"], settings)
    assert (principal.user_id, principal.role.value) == ("ana", "researcher")
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], audience=settings.jwt_audience)
    assert set(claims) == {"sub", "role", "iss", "aud", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 3600 and claims["iat"] >= before
    listed = client.get("/backtest/list", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200, listed.text


def test_viewer_gets_a_viewer_token_that_cannot_submit(client: TestClient) -> None:
    token = client.post("/auth/login", json={"username": "vic", "password": PASSWORD + "!"}).json()[
        "access_token"
    ]
    submit = client.post(
        "/backtest/submit",
        json={"strategy": "sma_cross", "symbols": ["BTCUSD"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert submit.status_code == 403, submit.text


@pytest.mark.parametrize(
    ("username", "password"), [("ana", "wrong password"), ("nobody", PASSWORD), ("vic", PASSWORD)]
)
def test_wrong_name_or_password_is_401_naming_neither(
    client: TestClient, username: str, password: str
) -> None:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "user name or password is wrong"


def test_attempts_per_name_are_rate_limited_and_refill(client: TestClient, clock: FakeClock) -> None:
    for _ in range(3):
        assert (
            client.post("/auth/login", json={"username": "ana", "password": "bad-guess"}).status_code == 401
        )
    limited = client.post("/auth/login", json={"username": "ana", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert client.post("/auth/login", json={"username": "vic", "password": PASSWORD + "!"}).status_code == 200
    clock.now += 60
    assert client.post("/auth/login", json={"username": "ana", "password": PASSWORD}).status_code == 200
