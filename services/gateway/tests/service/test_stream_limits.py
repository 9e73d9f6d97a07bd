"""WS /backtest/stream under a heavy tenant: bounded SUCCESS frames, read tokens, a per-user cap, auth."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from backtest_core.contracts import BacktestAccepted, BacktestSucceeded, TaskState
from backtest_core.model.config import BacktestConfig
from backtest_core.model.trade_log import PACKED
from backtest_gateway.ports import TaskRecord
from backtest_gateway.settings import GatewaySettings
from backtest_testinfra import make_large_result
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.service

TASK = "ab" * 16
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD", "ETHUSD"])


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    """Three reads at once per user and at most two open streams per user."""
    return settings.model_copy(update={"read_burst": 3, "streams_per_user_max": 2})


def _store_task(gateway, task_id: str = TASK, user: str = "alice", **fields) -> None:
    fields = {"state": TaskState.PENDING, **fields}
    gateway.store.put(TaskRecord(task_id=task_id, user_id=user, created_at=datetime.now(UTC), **fields))


def _accepted(task_id: str = TASK, user: str = "alice") -> BacktestAccepted:
    return BacktestAccepted(task_id=task_id, user_id=user, seq=1, config=CONFIG, cache_key="k")


def test_success_frame_of_a_many_trade_result_carries_the_first_page_and_the_totals(gateway, make_token):
    result = make_large_result(CONFIG, trades=12_345, equity_points=7_000)
    success = BacktestSucceeded(task_id=TASK, user_id="alice", seq=2, result=result)
    stored = result.model_dump(mode="json", context=PACKED)
    _store_task(gateway, state=TaskState.SUCCESS, seq=2, result=stored)
    gateway.feed.append(_accepted())
    gateway.feed.append(success)

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}?token={make_token()}") as ws:
        ws.receive_json()
        frame = ws.receive_json()

    assert (frame["state"], frame["seq"]) == ("SUCCESS", 2)
    assert (len(frame["result"]["trades"]), len(frame["result"]["equity_curve"])) == (1000, 5000)
    assert frame["page"]["trades_total"] == 12_345 and frame["page"]["trades_next_offset"] == 1000
    assert frame["result"]["trades"][999] == result.trades[999].model_dump(mode="json")
    assert frame["result"]["metrics"]["trade_count"] == 12_345


def test_each_stream_spends_a_read_token_and_an_empty_bucket_closes_with_4429(gateway, make_token):
    _store_task(gateway, state=TaskState.CANCELLED, seq=1)  # finished, events expired: one frame each
    url = f"/backtest/stream/{TASK}?token={make_token()}"
    frames = []
    for _ in range(3):
        with gateway.client.websocket_connect(url) as ws:
            frames.append(ws.receive_json())

    with gateway.client.websocket_connect(url) as ws:
        refused = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert [f["state"] for f in frames] == ["CANCELLED"] * 3
    assert refused["error"]["code"] == "rate_limited"
    assert closed.value.code == 4429


def test_a_third_open_stream_of_one_user_closes_with_4429_while_another_user_streams(gateway, make_token):
    _store_task(gateway, seq=1)  # the results writer stored the accepted event
    _store_task(gateway, task_id="cd" * 16, user="bob", seq=1)
    gateway.feed.append(_accepted())
    gateway.feed.append(_accepted("cd" * 16, "bob"))
    alice = f"/backtest/stream/{TASK}?token={make_token()}"

    with gateway.client.websocket_connect(alice) as first, gateway.client.websocket_connect(alice) as second:
        assert (first.receive_json()["seq"], second.receive_json()["seq"]) == (1, 1)
        with gateway.client.websocket_connect(alice) as third:
            refused = third.receive_json()
            with pytest.raises(WebSocketDisconnect) as closed:
                third.receive_json()
        with gateway.client.websocket_connect(
            f"/backtest/stream/{'cd' * 16}?token={make_token('bob')}"
        ) as bob:
            bob_frame = bob.receive_json()

    assert refused["error"]["code"] == "too_many_streams"
    assert "at most 2 open streams per user" in refused["error"]["message"]
    assert closed.value.code == 4429
    assert (bob_frame["user_id"], bob_frame["seq"]) == ("bob", 1)


def test_closed_streams_free_their_slots(gateway, make_token):
    _store_task(gateway, seq=1)
    gateway.feed.append(_accepted())
    url = f"/backtest/stream/{TASK}?token={make_token()}"
    for _ in range(2):
        with gateway.client.websocket_connect(url) as a, gateway.client.websocket_connect(url) as b:
            assert (a.receive_json()["seq"], b.receive_json()["seq"]) == (1, 1)
        gateway.clock.advance(10)  # refill the read bucket; only the open-stream cap is under test


def test_token_in_the_bearer_subprotocol_authenticates_and_the_server_selects_bearer(gateway, make_token):
    _store_task(gateway, state=TaskState.CANCELLED, seq=1)

    with gateway.client.websocket_connect(
        f"/backtest/stream/{TASK}", subprotocols=["bearer", make_token()]
    ) as ws:
        frame = ws.receive_json()
        selected = ws.accepted_subprotocol

    assert (frame["state"], selected) == ("CANCELLED", "bearer")
