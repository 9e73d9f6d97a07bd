"""Read-your-writes between the WebSocket and REST: once a frame is seen, status and results show it.

A client that follows the README (submit, stream to the terminal frame, then GET) must get the result at
once, with no retry, for a fresh run and for resubmissions answered from the cache.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.contracts import MAX_RESULT_BYTES
from backtest_testinfra.stack import JWT_SECRET, Stack
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG: dict[str, Any] = {
    "strategy": "sma_cross",
    "params": {"fast": 7, "slow": 21},
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2017-01-01T00:00:00Z",
    "end": "2019-01-01T00:00:00Z",
}
RESUBMISSIONS = 5
STREAM_TIMEOUT_S = 180.0


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token('rita', 'researcher', JWT_SECRET.encode(), ttl_s=3600)}"}


def _follow_checking_status(platform: Stack, http: httpx.Client, task_id: str) -> list[tuple[int, int]]:
    """Stream the task; after each frame GET its status; return (frame seq, status seq) pairs."""
    url = platform.gateway_url.replace("http", "ws", 1) + f"/backtest/stream/{task_id}"
    seen = []
    with connect(url, additional_headers=_headers(), open_timeout=10, max_size=2 * MAX_RESULT_BYTES) as ws:
        while True:
            frame = json.loads(ws.recv(timeout=STREAM_TIMEOUT_S))
            status = http.get(f"/backtest/status/{task_id}").json()
            seen.append((frame["seq"], status["seq"]))
            if frame["state"] in {"SUCCESS", "FAILURE", "CANCELLED"}:
                return seen


def test_results_and_status_are_current_right_after_each_frame_including_cached_resubmissions(
    platform: Stack,
) -> None:
    runs: list[dict[str, Any]] = []
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        for attempt in range(1 + RESUBMISSIONS):
            body = {**CONFIG, "parallel_symbols": 1 + attempt % 2}  # same cache key, a new task each time
            submitted = http.post("/backtest/submit", json=body)
            assert submitted.status_code == 202, submitted.text
            task_id = submitted.json()["task_id"]
            seen = _follow_checking_status(platform, http, task_id)
            results = http.get(f"/backtest/results/{task_id}")  # no retry: the terminal frame was sent
            runs.append({"seen": seen, "code": results.status_code, "body": results.json()})

    lagging = [
        (i, frame, stored) for i, run in enumerate(runs) for frame, stored in run["seen"] if stored < frame
    ]
    assert lagging == [], (
        f"status behind the frame already sent (run, frame seq, status seq)\n{platform.log_tails()}"
    )
    assert [run["code"] for run in runs] == [200] * (1 + RESUBMISSIONS), [r["body"] for r in runs]
    first = runs[0]["body"]
    assert first["cached_from"] is None
    assert [run["body"]["cached_from"] for run in runs[1:]] == [first["task_id"]] * RESUBMISSIONS
    finals = {run["body"]["result"]["metrics"]["final_equity"] for run in runs}
    assert finals == {first["result"]["metrics"]["final_equity"]}
