"""kill -9 of the sweeper, three times, while a 20-trial sweep runs in 10 chunks of 2: the restarted
sweeper resumes it, every chunk runs as exactly one task, every trial ends once with the metrics of a
backtest of its config, and the sweep ends with every trial counted.

The sweeper marks a chunk's trials SUBMITTED before it sends the chunk's SubmitBacktest and resends
every SUBMITTED chunk at start; the task id and message id derive from the sweep and the chunk's
trials, so a resend is the same task (JetStream's duplicate window, then the scheduler, drop it).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig
from backtest_testinfra import shipped_candles
from backtest_testinfra.stack import SYMBOL, Stack

from .checks import assert_chunks_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
SEARCH = {"space": ["fast=5:25:5", "slow=30,40,50,60"], "objective": "sharpe"}  # 20 trials, all valid
SWEEP_TIMEOUT_S = 300.0
START, END = datetime(2019, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)  # 731 daily bars
CHUNK = {"SWEEPER_CHUNK_BAR_TRIALS": str(2 * 731)}  # 2 trials a chunk: 10 chunks


def _status(stack: Stack, http: httpx.Client, sweep_id: str) -> dict[str, Any]:
    response = http.get(f"/sweep/{sweep_id}")
    if response.status_code != 200:
        pytest.fail(
            f"GET /sweep/{sweep_id} answered {response.status_code}: {response.text}\n{stack.log_tails()}"
        )
    body: dict[str, Any] = response.json()
    return body


def _wait(stack: Stack, http: httpx.Client, sweep_id: str, *, ended: int | None = None) -> dict[str, Any]:
    """Poll the sweep until `ended` trials have ended (None: until it has finished); return its status."""
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            status = _status(stack, http, sweep_id)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        counts = status["counts"]
        if (ended is None and status["finished_at"] is not None) or (
            ended is not None and counts["done"] + counts["failed"] >= ended
        ):
            return status
        time.sleep(0.1)
    pytest.fail(f"sweep {sweep_id} did not get there in {SWEEP_TIMEOUT_S:.0f} s\n{stack.log_tails()}")


def test_sweeper_killed_mid_sweep_resumes_and_every_trial_ends_once(stack_factory):
    stack = stack_factory(runners=2, slots=2, gateway=True, sweeper=True, overrides={"sweeper": CHUNK})
    sweeper = stack.services["sweeper"]
    rng = random.Random()
    pauses: list[float] = []
    body = {
        "strategy": "sma_cross",
        "symbols": [SYMBOL],
        "interval": "1d",
        "start": START.isoformat(),
        "end": END.isoformat(),
        "search": SEARCH,
    }
    with httpx.Client(base_url=stack.gateway_url, headers=stack.headers(), timeout=30) as http:
        submitted = http.post("/sweep/submit", json=body)
        assert submitted.status_code == 202, submitted.text
        sweep_id = submitted.json()["sweep_id"]
        for kill in range(KILLS):
            _wait(stack, http, sweep_id, ended=4 * (kill + 1))
            pauses.append(round(rng.uniform(0.0, 0.5), 3))
            time.sleep(pauses[-1])
            sweeper.kill()
            sweeper.start()
        status = _wait(stack, http, sweep_id)
        trials = http.get(f"/sweep/{sweep_id}/trials", params={"limit": 100}).json()["trials"]

    print(
        f"\nsweeper killed {KILLS} times, pauses before each kill (s): {pauses}; counts: {status['counts']}"
    )
    assert status["state"] == "SUCCESS", stack.log_tails()
    assert status["counts"] == {
        "total": 20,
        "done": 20,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
        "running": 0,
    }
    assert sorted(t["id"] for t in trials) == list(range(20))
    chunks = assert_chunks_once(stack, [t["task_id"] for t in trials])  # no chunk ran twice
    assert len(chunks) == 10 and set(chunks.values()) == {2}, chunks
    candles = {SYMBOL: shipped_candles(SYMBOL)}
    for trial in trials:
        params = trial["params"]
        config = BacktestConfig(
            strategy="sma_cross", symbols=[SYMBOL], interval="1d", start=START, end=END, params=params
        )
        expected = run_backtest(config, candles).metrics.model_dump(mode="json")
        # the sandbox image (its Python, libm) rounds alpha and beta differently in the last bit or two
        assert trial["metrics"] == pytest.approx(expected, rel=1e-12, abs=1e-12), trial["id"]
    assert status["overfitting"] is not None and status["overfitting"]["trials"] == 20
