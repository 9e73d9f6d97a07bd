"""WS /sweep/stream: each ended trial once, the status on every change and last, then close 1000."""

from __future__ import annotations

from datetime import timedelta

import pytest
from backtest_core.contracts import SweepState
from gateway_testdata import finished_sweep
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.service

S = "5a" * 16


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"sweep_stream_poll_s": 0.02})


def _receive_all(ws) -> tuple[list[dict], int]:
    frames = []
    while True:
        try:
            frames.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return frames, closed.code


def test_trials_come_once_as_they_end_and_the_final_status_last(gateway, make_token):
    record, trials = finished_sweep(S, "alice", [0.5, None, 1.5])
    running = record.model_copy(update={"state": SweepState.RUNNING, "finished_at": None})
    gateway.sweeps.records[S] = running.model_copy(update={"updated_at": record.created_at})
    gateway.sweeps.put_trial(trials[0])
    headers = {"Authorization": f"Bearer {make_token('alice')}"}

    with gateway.client.websocket_connect(f"/sweep/stream/{S}", headers=headers) as ws:
        first = [ws.receive_json(), ws.receive_json()]
        gateway.sweeps.put_trial(trials[1])
        gateway.sweeps.records[S] = running.model_copy(
            update={"updated_at": record.created_at + timedelta(1)}
        )
        second = [ws.receive_json(), ws.receive_json()]
        gateway.sweeps.put_trial(trials[2])
        gateway.sweeps.records[S] = record
        rest, code = _receive_all(ws)

    kinds = [(f["type"], f.get("trial", {}).get("id")) for f in first + second + rest]
    assert kinds == [
        ("trial", 0),
        ("status", None),
        ("trial", 1),
        ("status", None),
        ("trial", 2),
        ("status", None),
    ]
    assert [f["sweep"]["state"] for f in (first[1], second[1], rest[1])] == ["RUNNING", "RUNNING", "SUCCESS"]
    assert rest[1]["sweep"]["finished_at"] is not None and code == 1000
    assert second[0]["trial"] == trials[1].as_json()


def test_a_foreign_sweep_gets_one_error_frame_and_close_4404(gateway, make_token):
    gateway.sweeps.records[S] = finished_sweep(S, "bob", [0.5])[0]

    with gateway.client.websocket_connect(f"/sweep/stream/{S}?token={make_token('alice')}") as ws:
        frames, code = _receive_all(ws)

    assert [f["error"]["code"] for f in frames] == ["sweep_not_found"] and code == 4404
