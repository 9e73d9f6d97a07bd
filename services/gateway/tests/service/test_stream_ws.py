"""WS /backtest/stream relays a task's events in order from the first and closes after the terminal one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestProgressed,
    BacktestStarted,
    TaskState,
)
from backtest_core.model.config import BacktestConfig
from backtest_gateway.ports import TaskRecord
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.service

TASK = "ab" * 16
CONFIG = BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"])


def _events(user: str = "alice"):
    return [
        BacktestAccepted(task_id=TASK, user_id=user, seq=1, config=CONFIG, cache_key="k"),
        BacktestStarted(task_id=TASK, user_id=user, seq=2, attempt=1),
        BacktestProgressed(task_id=TASK, user_id=user, seq=3, fraction=0.5, stage="proposals"),
        BacktestCancelled(task_id=TASK, user_id=user, seq=4),
        # anything after the terminal event must never reach the client
        BacktestProgressed(task_id=TASK, user_id=user, seq=5, fraction=0.9, stage="late"),
    ]


def _store_task(gateway, user: str = "alice") -> None:
    gateway.store.put(
        TaskRecord(task_id=TASK, user_id=user, state=TaskState.PENDING, created_at=datetime.now(UTC))
    )


def _store_event(gateway, event) -> None:
    """Play the results writer: store the event's state and seq on the task."""
    record = gateway.store.records[event.task_id]
    gateway.store.put(record.model_copy(update={"state": event.state, "seq": event.seq}))


def _deliver(gateway, event) -> None:
    """Store the event (results writer), then publish it (event stream)."""
    _store_event(gateway, event)
    gateway.feed.append(event)


def _receive_all(ws) -> tuple[list[dict], int]:
    frames = []
    while True:
        try:
            frames.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return frames, closed.code


def test_late_client_gets_every_event_in_order_then_close_1000(gateway, make_token):
    _store_task(gateway)
    for event in _events():
        _deliver(gateway, event)

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}?token={make_token()}") as ws:
        frames, code = _receive_all(ws)

    assert [f["seq"] for f in frames] == [1, 2, 3, 4]
    assert [f["state"] for f in frames] == ["PENDING", "STARTED", "PROGRESS", "CANCELLED"]
    assert frames[2]["fraction"] == 0.5
    assert code == 1000


def test_live_events_are_relayed_as_they_arrive(gateway, make_token):
    _store_task(gateway)
    events = _events()
    headers = {"Authorization": f"Bearer {make_token()}"}

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}", headers=headers) as ws:
        _deliver(gateway, events[0])
        first = ws.receive_json()
        feeder = threading.Thread(target=lambda: [_deliver(gateway, e) for e in events[1:]])
        feeder.start()
        rest, code = _receive_all(ws)
        feeder.join()

    assert [first["seq"]] + [f["seq"] for f in rest] == [1, 2, 3, 4]
    assert code == 1000


def test_foreign_task_closes_with_4404_and_no_event(gateway, make_token):
    _store_task(gateway, user="bob")
    for event in _events("bob"):
        gateway.feed.append(event)

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}?token={make_token('alice')}") as ws:
        frames, code = _receive_all(ws)

    assert frames == [
        {
            "error": {
                "code": "task_not_found",
                "message": f"no backtest with task_id {TASK!r}",
                "field": "task_id",
            }
        }
    ]
    assert code == 4404


def test_missing_token_closes_with_4401(gateway):
    _store_task(gateway)

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}") as ws:
        frames, code = _receive_all(ws)

    assert frames[0]["error"]["code"] == "unauthorized"
    assert code == 4401


def test_client_leaving_early_releases_the_event_subscription(gateway, make_token):
    _store_task(gateway)
    _deliver(gateway, _events()[0])

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}?token={make_token()}") as ws:
        assert ws.receive_json()["seq"] == 1
        assert gateway.feed.followers == 1

    assert gateway.feed.followers == 0


def test_finished_task_whose_events_expired_gets_its_stored_status_then_close(gateway, make_token):
    gateway.store.put(TaskRecord(task_id=TASK, user_id="alice", state=TaskState.SUCCESS, seq=6))

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}?token={make_token()}") as ws:
        frames, code = _receive_all(ws)

    assert [(f["task_id"], f["state"], f["seq"]) for f in frames] == [(TASK, "SUCCESS", 6)]
    assert code == 1000


def test_frame_is_sent_only_once_the_store_shows_it_so_rest_reads_what_the_client_saw(gateway, make_token):
    _store_task(gateway)
    accepted, started = _events()[:2]
    _deliver(gateway, accepted)
    gateway.feed.append(started)  # published, but the results writer has not stored it yet
    headers = {"Authorization": f"Bearer {make_token()}"}

    with gateway.client.websocket_connect(f"/backtest/stream/{TASK}", headers=headers) as ws:
        assert ws.receive_json()["seq"] == 1
        stored_late = threading.Timer(0.3, _store_event, (gateway, started))
        stored_late.start()
        second = ws.receive_json()
        status = gateway.client.get(f"/backtest/status/{TASK}", headers=headers).json()
        stored_late.join()

    assert (second["seq"], second["state"]) == (2, "STARTED")
    assert (status["seq"], status["state"]) == (2, "STARTED")
