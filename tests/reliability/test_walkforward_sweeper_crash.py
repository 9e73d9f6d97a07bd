"""kill -9 of the sweeper, three times, while a walk-forward runs (its fold sweeps, then its test runs): the
restarted sweeper resumes it, every fold's test run is exactly one backtest, and the result is the same
walk-forward run in process.

The sweeper marks a fold TESTING before it sends the fold's test run and resends every TESTING fold's run
and every PENDING fold sweep's command at start; their ids derive from the walk-forward and the fold, so
a resend is the same sweep or task.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import pytest
from backtest_core.model.config import BacktestConfig
from backtest_research.space import ParamSpace
from backtest_research.sweep import Objective
from backtest_research.walkforward import plan_folds, run_walkforward
from backtest_testinfra import shipped_candles
from backtest_testinfra.stack import SYMBOL, Stack

from .checks import assert_chunks_once, assert_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3
BODY: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbols": [SYMBOL],
    "interval": "1d",
    "start": "2017-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
    "train": 300,
    "test": 120,
    "search": {"space": ["fast=5,10", "slow=20,30"], "objective": "sharpe"},
}
TIMEOUT_S = 300.0


def _status(stack: Stack, http: httpx.Client, walkforward_id: str) -> dict[str, Any] | None:
    try:
        response = http.get(f"/walkforward/{walkforward_id}")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        pytest.fail(
            f"GET /walkforward/{walkforward_id}: {response.status_code} {response.text}\n{stack.log_tails()}"
        )
    body: dict[str, Any] = response.json()
    return body


def _wait(
    stack: Stack, http: httpx.Client, walkforward_id: str, *, tested: int | None = None
) -> dict[str, Any]:
    """Poll until `tested` folds have sent their test run (None: until it has finished); return the status."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = _status(stack, http, walkforward_id)
        if status is not None:
            out = sum(f["test_task_id"] is not None for f in status["folds"])
            if (tested is None and status["finished_at"] is not None) or (
                tested is not None and out >= tested
            ):
                return status
        time.sleep(0.1)
    pytest.fail(f"walk-forward {walkforward_id} did not get there in {TIMEOUT_S:.0f} s\n{stack.log_tails()}")


def _local() -> dict[str, Any]:
    """The same walk-forward in process (`backtest walkforward`'s library) on the candles of the range."""
    base = BacktestConfig.model_validate(
        {k: BODY[k] for k in ("strategy", "symbols", "interval", "start", "end")}
    )
    assert base.start is not None and base.end is not None
    bounds = (int(base.start.timestamp()) * 10**9, int(base.end.timestamp()) * 10**9)
    candles = {SYMBOL: shipped_candles(SYMBOL).between(*bounds)}
    planned = list(ParamSpace.parse(BODY["search"]["space"]).grid())
    folds = plan_folds(len(candles[SYMBOL]), BODY["train"], BODY["test"])
    return run_walkforward(base, candles, planned, Objective.parse("sharpe"), folds, workers=1).as_json()


def test_sweeper_killed_mid_walk_forward_resumes_and_each_test_run_is_one_backtest(stack_factory):
    stack = stack_factory(runners=2, slots=2, gateway=True, sweeper=True)
    sweeper = stack.services["sweeper"]
    rng = random.Random()
    pauses: list[float] = []
    with httpx.Client(base_url=stack.gateway_url, headers=stack.headers(), timeout=30) as http:
        submitted = http.post("/walkforward/submit", json=BODY)
        assert submitted.status_code == 202, submitted.text
        walkforward_id = submitted.json()["walkforward_id"]
        for kill in range(KILLS):
            _wait(stack, http, walkforward_id, tested=kill)
            pauses.append(round(rng.uniform(0.0, 0.5), 3))
            time.sleep(pauses[-1])
            sweeper.kill()
            sweeper.start()
        status = _wait(stack, http, walkforward_id)
        result = http.get(f"/walkforward/{walkforward_id}/result").json()

    print(f"\nsweeper killed {KILLS} times, pauses before each kill (s): {pauses}; folds: {status['counts']}")
    assert status["state"] == "SUCCESS", f"{status}\n{stack.log_tails()}"
    assert [f["state"] for f in status["folds"]] == ["DONE"] * len(status["folds"])
    local = _local()
    assert [f["params"] for f in result["folds"]] == [f["params"] for f in local["folds"]]
    assert result["oos"]["metrics"] == pytest.approx(local["oos"]["metrics"], abs=1e-9)
    assert result["efficiency"] == pytest.approx(local["efficiency"], abs=1e-9)
    tests = [f["test_task_id"] for f in status["folds"]]
    trials = []
    for fold in status["folds"]:
        with httpx.Client(base_url=stack.gateway_url, headers=stack.headers(), timeout=30) as http:
            page = http.get(f"/sweep/{fold['sweep_id']}/trials", params={"limit": 100}).json()
        trials += [t["task_id"] for t in page["trials"]]
    assert_exactly_once(stack, tests)  # no test run ran twice
    assert_chunks_once(stack, trials)  # no chunk of trials ran twice
