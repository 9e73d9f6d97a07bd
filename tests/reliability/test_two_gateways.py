"""Two gateways behind the same clients: a user's limits hold across both (rate limits and the stream cap
live in NATS KV), and a backtest submitted through one is streamed and read through the other."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from backtest_core.contracts import new_id
from backtest_testinfra.stack import Stack, small_config
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .checks import assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BURST = 4  # submissions a user may make at once, on all gateways together
ATTEMPTS = 3 * BURST
TERMINAL = {"SUCCESS", "FAILURE", "CANCELLED"}
LIMITS = {
    "GATEWAY_SUBMIT_BURST": str(BURST),
    "GATEWAY_SUBMIT_RATE_PER_MIN": "0.01",  # no token comes back while the test runs
    "GATEWAY_STREAMS_PER_USER_MAX": "1",
}


def _ws_url(gateway_url: str, task_id: str) -> str:
    return gateway_url.replace("http", "ws", 1) + f"/backtest/stream/{task_id}"


def _stream_to_the_end(stack: Stack, gateway_url: str, task_id: str, user: str) -> list[dict[str, Any]]:
    frames = []
    with connect(
        _ws_url(gateway_url, task_id), additional_headers=stack.headers(user), open_timeout=10
    ) as ws:
        while True:
            frame = json.loads(ws.recv(timeout=120))
            frames.append(frame)
            if frame.get("state") in TERMINAL or "error" in frame:
                return frames


def test_two_gateways_grant_a_user_one_burst_and_serve_each_others_backtests(stack_factory):
    stack = stack_factory(runners=1, gateway=True, gateways=2, overrides={"gateway": LIMITS})
    user = f"alice-{new_id()[:8]}"
    answers: list[tuple[int, str, int]] = []  # (gateway index, task id or error code, status)
    for attempt in range(ATTEMPTS):
        index = attempt % 2
        response = httpx.post(
            f"{stack.gateway_urls[index]}/backtest/submit",
            json=small_config(attempt),
            headers=stack.headers(user),
            timeout=30,
        )
        body = response.json()
        answers.append((index, body.get("task_id") or body["error"]["code"], response.status_code))

    accepted = [(index, task) for index, task, status in answers if status == 202]
    refused = [status for _, code, status in answers if status == 429 and code == "rate_limited"]
    assert len(accepted) == BURST, f"{BURST} submissions at most over both gateways, answers: {answers}"
    assert len(refused) == ATTEMPTS - BURST
    assert {index for index, _ in accepted} == {0, 1}  # both gateways granted some of the one burst

    for index, task_id in accepted:  # follow each through the gateway that did NOT accept it
        other = stack.gateway_urls[1 - index]
        frames = _stream_to_the_end(stack, other, task_id, user)
        assert frames[-1]["state"] == "SUCCESS", f"{task_id} via {other}: {frames[-1]}"
        results = [
            httpx.get(f"{url}/backtest/results/{task_id}", headers=stack.headers(user), timeout=30).json()
            for url in stack.gateway_urls
        ]
        assert results[0]["result"]["metrics"] == results[1]["result"]["metrics"]
        assert results[0]["result"]["metrics"] == frames[-1]["result"]["metrics"]
    assert_exactly_once(stack, [task for _, task in accepted])


def test_a_users_one_stream_slot_is_held_across_both_gateways(stack_factory):
    stack = stack_factory(runners=1, gateway=True, gateways=2, overrides={"gateway": LIMITS})
    user = f"bea-{new_id()[:8]}"
    stack.services["runner-0"].kill()  # the backtest stays queued: its stream stays open
    response = httpx.post(
        f"{stack.gateway_urls[0]}/backtest/submit",
        json=small_config(0),
        headers=stack.headers(user),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    headers = stack.headers(user)

    with connect(
        _ws_url(stack.gateway_urls[0], task_id), additional_headers=headers, open_timeout=10
    ) as held:
        first = json.loads(held.recv(timeout=30))
        assert "error" not in first and first["task_id"] == task_id
        with connect(
            _ws_url(stack.gateway_urls[1], task_id), additional_headers=headers, open_timeout=10
        ) as ws:
            refused = json.loads(ws.recv(timeout=30))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
    assert refused["error"]["code"] == "too_many_streams"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429

    stack.services["runner-0"].start()  # the first stream closed: the other gateway streams it now
    frames = _stream_to_the_end(stack, stack.gateway_urls[1], task_id, user)
    assert frames[-1]["state"] == "SUCCESS", frames[-1]
    assert_exactly_once(stack, [task_id])
