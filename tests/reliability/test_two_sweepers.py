"""Two sweepers share two sweeps; one is killed -9 mid-sweep and not restarted: the other finishes both,
every trial runs as exactly one backtest and ends once, and each sweep's counts are its trials'.

The sweepers share the consumers and take a sweep's lock (NATS KV) for each change; the survivor
resumes every open sweep periodically (SWEEPER_RESUME_EVERY_S), so a trial the killed one marked
SUBMITTED but never sent goes out again under the same task id.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from backtest_testinfra.stack import SYMBOL

from .checks import assert_chunks_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 20
SEARCH = {"space": ["fast=5:25:5", "slow=30,40,50,60"], "objective": "sharpe"}  # 5 x 4, all valid
TIMEOUT_S = 300.0


def _sweep_body(end_year: int) -> dict[str, Any]:
    return {
        "strategy": "sma_cross",
        "symbols": [SYMBOL],
        "interval": "1d",
        "start": "2019-01-01T00:00:00Z",
        "end": f"{end_year}-01-01T00:00:00Z",
        "search": SEARCH,
    }


def test_one_of_two_sweepers_killed_mid_sweep_the_other_finishes_every_sweep_once(stack_factory):
    stack = stack_factory(
        runners=2,
        slots=2,
        gateway=True,
        sweeper=True,
        sweepers=2,
        overrides={"sweeper": {"SWEEPER_RESUME_EVERY_S": "3", "SWEEPER_TRIALS_IN_FLIGHT": "4"}},
    )
    users = ["ann", "ben"]
    clients = [httpx.Client(base_url=stack.gateway_url, headers=stack.headers(u), timeout=30) for u in users]
    try:
        sweep_ids = []
        for client, end_year in zip(clients, (2020, 2021), strict=True):
            submitted = client.post("/sweep/submit", json=_sweep_body(end_year))
            assert submitted.status_code == 202, submitted.text
            sweep_ids.append(submitted.json()["sweep_id"])

        deadline = time.monotonic() + TIMEOUT_S
        while sum(_ended(c, s) for c, s in zip(clients, sweep_ids, strict=True)) < TRIALS // 2:
            assert time.monotonic() < deadline, stack.log_tails()
            time.sleep(0.1)
        stack.services["sweeper-1"].kill()  # mid-sweep, for good

        statuses = [_finished(stack, c, s, deadline) for c, s in zip(clients, sweep_ids, strict=True)]
        trials = [
            c.get(f"/sweep/{s}/trials", params={"limit": 100}).json()["trials"]
            for c, s in zip(clients, sweep_ids, strict=True)
        ]
    finally:
        for client in clients:
            client.close()

    for status, rows in zip(statuses, trials, strict=True):
        assert status["state"] == "SUCCESS", stack.log_tails()
        assert status["counts"] == {
            "total": TRIALS,
            "done": TRIALS,
            "failed": 0,
            "skipped": 0,
            "cancelled": 0,
            "running": 0,
        }
        assert sorted(t["id"] for t in rows) == list(range(TRIALS))
    task_ids = [t["task_id"] for rows in trials for t in rows]
    assert_chunks_once(stack, task_ids)  # no chunk of trials ran twice, none was lost


def _ended(client: httpx.Client, sweep_id: str) -> int:
    counts = client.get(f"/sweep/{sweep_id}").json()["counts"]
    return int(counts["done"] + counts["failed"])


def _finished(stack: Any, client: httpx.Client, sweep_id: str, deadline: float) -> dict[str, Any]:
    while True:
        status: dict[str, Any] = client.get(f"/sweep/{sweep_id}").json()
        if status["finished_at"] is not None:
            return status
        assert time.monotonic() < deadline, f"sweep {sweep_id} unfinished: {status}\n{stack.log_tails()}"
        time.sleep(0.2)
