"""`backtest sweep --remote` as a user runs it, a subprocess, through the whole platform: its `--json` output
is the gateway's `GET /sweep/{id}/result` of the sweep it submitted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_testinfra.stack import JWT_SECRET, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLATFORM_ENV = {"SCHEDULER_PER_USER_IN_FLIGHT": "2", "SCHEDULER_MAX_IN_FLIGHT": "2"}
BACKTEST = Path(sys.executable).parent / "backtest"
# The symbol and range of test_sweep_e2e.py; 4 trials, fast 5 and 10 below slow 20 and 30: all valid.
SWEEP = ["--strategy", "sma_cross", "--symbols", "BTCUSD", "--interval", "1d", "--start", "2017-01-01",
         "--end", "2020-01-01", "--grid", "fast=5,10", "--grid", "slow=20,30"]  # fmt: skip
VALID_TRIALS = 4
CLI_TIMEOUT_S = 300.0


def test_backtest_sweep_remote_json_is_the_gateways_result_of_its_sweep(platform: Stack) -> None:
    token = create_token("sweep-cli-erin", "researcher", JWT_SECRET.encode(), ttl_s=3600)
    env = {**os.environ, "BACKTEST_GATEWAY": platform.gateway_url, "BACKTEST_TOKEN": token}

    run = subprocess.run(
        [str(BACKTEST), "sweep", "--remote", *SWEEP, "--json"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip

    assert run.returncode == 0, f"{run.stderr}\n{platform.log_tails()}"
    printed = json.loads(run.stdout)
    with httpx.Client(
        base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        stored = http.get(f"/sweep/{printed['sweep_id']}/result").json()
    assert run.stderr.startswith(f"submitted sweep {printed['sweep_id']} ({VALID_TRIALS} trials)")
    assert printed == stored
    assert printed["state"] == "SUCCESS"
    assert printed["counts"] == {"total": VALID_TRIALS, "done": VALID_TRIALS, "failed": 0, "skipped": 0}
    assert [t["params"] for t in printed["trials"]] == [
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 30},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 30},
    ]
    assert printed["overfitting"]["trials"] == VALID_TRIALS
