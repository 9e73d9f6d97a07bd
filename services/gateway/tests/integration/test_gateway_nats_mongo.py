"""The gateway against real NATS JetStream and the MongoDB-compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import jwt
import nats
import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestProgressed,
    BacktestStarted,
    BacktestSucceeded,
    Stream,
    Subject,
    new_id,
)
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.io.data_files import read_candle_file
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import EquityPoint
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from backtest_marketdata import MongoCandleStore, MongoSymbolStore
from backtest_testinfra import make_backtest_result
from fastapi.testclient import TestClient
from nats.js import JetStreamContext
from pymongo import MongoClient
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.integration

SECRET = "integration-secret-0123456789abcdef-01"
REPO = Path(__file__).resolve().parents[4]
BTCUSD_MONTH = REPO / "data/binance/spot/monthly/klines/BTCUSD/1d/BTCUSD-1d-2019-06.csv"
CONFIG = {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSD"], "interval": "1d"}
RESULT = make_backtest_result(
    BacktestConfig.model_validate(CONFIG),
    start_equity=1_000_000.0,
    final_equity=1_100_000.0,
    sharpe=1.2,
    trade_count=20,
    equity_curve=[EquityPoint(time=datetime(2020, 1, 1, tzinfo=UTC), equity=1_000_000.0)],
)


def token(settings: GatewaySettings, user: str, role: str = "researcher") -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "exp": now + 600,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
def settings(nats_url: str, mongo_uri: str) -> GatewaySettings:
    return GatewaySettings(
        jwt_secret=SECRET, nats_url=nats_url, mongodb_uri=mongo_uri, mongodb_database=f"gw_{new_id()[:12]}"
    )


@pytest.fixture
def client(settings: GatewaySettings) -> Iterator[TestClient]:
    """The gateway over a database whose catalog holds one month of the shipped BTCUSD daily candles."""
    with MongoClient(settings.mongodb_uri, tz_aware=True) as mongo:
        db = mongo[settings.mongodb_database]
        candles = MongoCandleStore(db)
        candles.write(read_candle_file(BTCUSD_MONTH))
        MongoSymbolStore(db).set_coverage(candles.coverage("BTCUSD", "1d"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    connection = await nats.connect(nats_url)
    try:
        yield connection.jetstream()
    finally:
        await connection.drain()


async def stored_commands(js: JetStreamContext, task_id: str) -> list[tuple[dict, str]]:
    """Every SubmitBacktest stored for task_id, with its Nats-Msg-Id header."""
    sub = await js.subscribe(Subject.SUBMIT, stream=Stream.COMMANDS.value, ordered_consumer=True)
    found = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return found
            body = json.loads(msg.data)
            if body["task_id"] == task_id:
                found.append((body, (msg.headers or {}).get("Nats-Msg-Id", "")))
    finally:
        await sub.unsubscribe()


async def test_submit_is_recorded_in_mongo_and_stored_in_the_commands_stream(client, settings, js, mongo_uri):
    headers = {"Authorization": f"Bearer {token(settings, 'alice')}", "Idempotency-Key": "nightly-1"}

    first = client.post("/backtest/submit", json=CONFIG, headers=headers)
    again = client.post("/backtest/submit", json=CONFIG, headers=headers)
    task_id = first.json()["task_id"]
    status = client.get(f"/backtest/status/{task_id}", headers=headers)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["task_id"] == task_id
    assert (status.status_code, status.json()["state"], status.json()["seq"]) == (200, "PENDING", 0)
    [(command, msg_id)] = await stored_commands(js, task_id)
    assert command["user_id"] == "alice"
    assert command["kind"] == "submit"
    assert command["config"]["params"] == {"fast": 5, "slow": 20}
    assert msg_id == command["message_id"]
    with MongoClient(mongo_uri) as mongo:
        doc = mongo[settings.mongodb_database][BACKTESTS_COLLECTION].find_one({"_id": task_id})
    assert (doc["user_id"], doc["state"], doc["seq"]) == ("alice", "PENDING", 0)


async def test_foreign_task_is_404_from_mongo(client, settings):
    alice = {"Authorization": f"Bearer {token(settings, 'alice')}"}
    bob = {"Authorization": f"Bearer {token(settings, 'bob')}"}
    task_id = client.post("/backtest/submit", json=CONFIG, headers=alice).json()["task_id"]

    assert client.get(f"/backtest/status/{task_id}", headers=bob).status_code == 404
    assert client.get("/backtest/list", headers=bob).json()["total"] == 0
    assert client.get("/backtest/list", headers=alice).json()["total"] == 1


async def test_websocket_replays_stored_events_then_follows_live_ones_and_closes(client, settings, js):
    headers = {"Authorization": f"Bearer {token(settings, 'alice')}"}
    task_id = client.post("/backtest/submit", json=CONFIG, headers=headers).json()["task_id"]
    config = BacktestConfig.model_validate(CONFIG)
    other = new_id()
    events = [
        BacktestAccepted(task_id=task_id, user_id="alice", seq=1, config=config, cache_key="k"),
        BacktestStarted(task_id=task_id, user_id="alice", seq=2, attempt=1),
        BacktestProgressed(task_id=task_id, user_id="alice", seq=3, fraction=0.4, stage="proposals"),
        BacktestProgressed(task_id=task_id, user_id="alice", seq=4, fraction=0.8, stage="portfolio"),
        BacktestSucceeded(task_id=task_id, user_id="alice", seq=5, result=RESULT),
    ]
    for event in events[:2]:
        await js.publish(Subject.event(task_id), event.model_dump_json().encode(), stream=Stream.EVENTS.value)
    noise = BacktestStarted(task_id=other, user_id="bob", seq=1, attempt=1)
    await js.publish(Subject.event(other), noise.model_dump_json().encode(), stream=Stream.EVENTS.value)

    frames = []
    with client.websocket_connect(f"/backtest/stream/{task_id}", headers=headers) as ws:
        frames += [ws.receive_json(), ws.receive_json()]
        for event in events[2:]:
            await js.publish(
                Subject.event(task_id), event.model_dump_json().encode(), stream=Stream.EVENTS.value
            )
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                frames.append(ws.receive_json())

    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert [f["state"] for f in frames] == ["PENDING", "STARTED", "PROGRESS", "PROGRESS", "SUCCESS"]
    assert {f["task_id"] for f in frames} == {task_id}
    assert frames[-1]["result"]["metrics"]["final_equity"] == 1_100_000.0
    assert closed.value.code == 1000


async def test_results_are_read_from_the_stored_document(client, settings, mongo_uri):
    headers = {"Authorization": f"Bearer {token(settings, 'alice')}"}
    task_id = client.post("/backtest/submit", json=CONFIG, headers=headers).json()["task_id"]
    result = RESULT
    with MongoClient(mongo_uri) as mongo:  # play the results writer
        mongo[settings.mongodb_database][BACKTESTS_COLLECTION].update_one(
            {"_id": task_id},
            {"$set": {"state": "SUCCESS", "seq": 5, "result": result.model_dump(mode="json", by_alias=True)}},
        )

    response = client.get(f"/backtest/results/{task_id}", headers=headers)

    assert response.status_code == 200
    assert response.json()["result"]["metrics"]["trade_count"] == 20
    assert response.json()["result"]["metrics"]["sharpe"] == 1.2


async def test_websocket_for_finished_task_without_stored_events_sends_its_status(
    client, settings, mongo_uri
):
    headers = {"Authorization": f"Bearer {token(settings, 'alice')}"}
    task_id = client.post("/backtest/submit", json=CONFIG, headers=headers).json()["task_id"]
    with MongoClient(mongo_uri) as mongo:  # finished long ago: its events have left the stream
        mongo[settings.mongodb_database][BACKTESTS_COLLECTION].update_one(
            {"_id": task_id}, {"$set": {"state": "CANCELLED", "seq": 3}}
        )

    with client.websocket_connect(f"/backtest/stream/{task_id}", headers=headers) as ws:
        frame = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert (frame["task_id"], frame["state"], frame["seq"]) == (task_id, "CANCELLED", 3)
    assert closed.value.code == 1000
