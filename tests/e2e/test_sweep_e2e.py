"""A parameter sweep through the whole platform: gateway, sweeper, scheduler, runner sandboxes, results.

Every trial's numbers must equal an in-process backtest of its config on the candles the platform
reads, and the sweep's ranking and overfitting statistics those of `backtest sweep` run locally.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.model.config import BacktestConfig
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_research.overfitting import deflated_sharpe, metrics_per_bar_sharpe
from backtest_research.search import SweepSearch
from backtest_research.sweep import run_sweep
from backtest_testinfra.stack import JWT_SECRET, Stack
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLATFORM_ENV = {"SCHEDULER_PER_USER_IN_FLIGHT": "2", "SCHEDULER_MAX_IN_FLIGHT": "2"}
BASE: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2017-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
SEARCH: dict[str, Any] = {"space": ["fast=5,10,20", "slow=20,50"], "objective": "sharpe:max"}
SWEEP_TIMEOUT_S = 240.0


def _headers(user: str = "sweeper-alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user, 'researcher', JWT_SECRET.encode(), ttl_s=3600)}"}


def _until_ended(platform: Stack, http: httpx.Client, sweep_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while time.monotonic() < deadline:
        status = http.get(f"/sweep/{sweep_id}").json()
        if status["finished_at"] is not None:
            return status
        time.sleep(0.5)
    pytest.fail(f"sweep {sweep_id} did not end in {SWEEP_TIMEOUT_S} s\n{platform.log_tails()}")


def _until_trials_end(platform: Stack, http: httpx.Client, sweep_id: str) -> dict[str, Any]:
    """The sweep's status once its first trials have ended."""
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while time.monotonic() < deadline:
        status = http.get(f"/sweep/{sweep_id}").json()
        if status["counts"]["done"] + status["counts"]["failed"] + status["counts"]["skipped"] > 0:
            return status
        time.sleep(0.05)
    pytest.fail(f"no trial of sweep {sweep_id} ended in {SWEEP_TIMEOUT_S} s\n{platform.log_tails()}")


def _submit(http: httpx.Client, search: dict[str, Any]) -> dict[str, Any]:
    submitted = http.post("/sweep/submit", json={**BASE, "search": search})
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


@pytest.fixture(scope="module")
def swept(platform: Stack) -> dict[str, Any]:
    """One 6-trial grid sweep, run to its end; its status and result."""
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        submitted = _submit(http, SEARCH)
        status = _until_ended(platform, http, submitted["sweep_id"])
        result = http.get(f"/sweep/{submitted['sweep_id']}/result").json()
    return {"submitted": submitted, "status": status, "result": result}


def _local(platform: Stack) -> Any:
    """`backtest sweep` in-process on the candles the platform reads."""
    base = BacktestConfig.model_validate(BASE)
    store = MongoCandleStore(platform.db)
    candles = {symbol: store.load(symbol, base.interval) for symbol in base.symbols}
    search = SweepSearch.model_validate(SEARCH)
    return run_sweep(base, candles, search.planned(), search.ranking(), workers=1)


def test_a_grid_sweep_ends_with_each_trial_done_or_skipped_by_the_strategys_validation(swept, platform):
    status = swept["status"]

    assert swept["submitted"]["trials"] == 6
    assert status["state"] == "SUCCESS", f"{status}\n{platform.log_tails()}"
    assert status["counts"] == {
        "total": 6,
        "done": 5,
        "failed": 0,
        "skipped": 1,
        "cancelled": 0,
        "running": 0,
    }
    skipped = [t for t in swept["result"]["trials"] if t["state"] == "SKIPPED"]
    assert [t["params"] for t in skipped] == [{"fast": 20, "slow": 20}]
    assert "fast" in skipped[0]["reason"]


def test_every_trial_and_the_statistics_equal_backtest_sweep_run_locally(swept, platform):
    local = _local(platform).as_json()
    remote = swept["result"]

    by_id = {t["id"]: t for t in remote["trials"]}
    for trial in local["trials"]:
        mine = by_id[trial["id"]]
        assert (mine["params"], mine["state"]) == (trial["params"], trial["state"])
        if trial["state"] == "SUCCESS":
            assert mine["metrics"]["final_equity"] == pytest.approx(
                trial["metrics"]["final_equity"], abs=1e-9
            )
            assert mine["metrics"]["sharpe"] == pytest.approx(trial["metrics"]["sharpe"], abs=1e-12)
    assert remote["best"]["id"] == local["best"]["id"]
    assert swept["status"]["best"]["id"] == local["best"]["id"]
    for key in ("pbo", "deflated_sharpe", "psr", "trials"):
        assert remote["overfitting"][key] == pytest.approx(local["overfitting"][key], abs=1e-9), key
    assert remote["overfitting"]["trials"] == 5


def test_trials_page_sorts_by_a_metric_and_comes_as_csv(swept, platform):
    sweep_id = swept["submitted"]["sweep_id"]
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        page = http.get(
            f"/sweep/{sweep_id}/trials", params={"sort": "-sharpe", "state": "SUCCESS", "limit": 2}
        )
        rows = list(csv.DictReader(io.StringIO(http.get(f"/sweep/{sweep_id}/trials?format=csv").text)))
        bad = http.get(f"/sweep/{sweep_id}/trials", params={"sort": "luck"})

    body = page.json()
    sharpes = sorted(
        (t["metrics"]["sharpe"] for t in swept["result"]["trials"] if t["metrics"]), reverse=True
    )
    assert (body["total"], [t["metrics"]["sharpe"] for t in body["trials"]]) == (5, sharpes[:2])
    assert [int(r["id"]) for r in rows] == list(range(6))
    assert {r["fast"] for r in rows} == {"5", "10", "20"} and rows[0]["final_equity"] != ""
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sort"


def test_surface_is_the_metric_over_two_params(swept, platform):
    sweep_id = swept["submitted"]["sweep_id"]
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        surface = http.get(f"/sweep/{sweep_id}/surface", params={"x": "fast", "y": "slow"}).json()

    trials = {(t["params"]["fast"], t["params"]["slow"]): t for t in swept["result"]["trials"]}
    assert (surface["x"]["values"], surface["y"]["values"]) == ([5, 10, 20], [20, 50])
    assert surface["z"][1][2] == trials[(20, 50)]["metrics"]["sharpe"]
    assert surface["z"][0][2] is None  # (20, 20) was skipped
    assert surface["trials"][0][0] == trials[(5, 20)]["id"]


def test_another_user_cannot_see_the_sweep(swept, platform):
    sweep_id = swept["submitted"]["sweep_id"]
    with httpx.Client(base_url=platform.gateway_url, headers=_headers("sweeper-bob"), timeout=30) as http:
        answers = [http.get(f"/sweep/{sweep_id}{tail}") for tail in ("", "/trials", "/result")]
        cancel = http.post(f"/sweep/{sweep_id}/cancel")

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert cancel.status_code == 404 and cancel.json()["error"]["code"] == "sweep_not_found"


def test_the_same_sweep_again_is_answered_by_the_result_cache(swept, platform):
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        again = _submit(http, SEARCH)
        status = _until_ended(platform, http, again["sweep_id"])
        result = http.get(f"/sweep/{again['sweep_id']}/result").json()

    assert status["counts"]["done"] == 5
    assert all(t["cached"] for t in result["trials"] if t["state"] == "SUCCESS")
    first = {t["id"]: t["metrics"] for t in swept["result"]["trials"]}
    assert {t["id"]: t["metrics"] for t in result["trials"]} == first
    # N of the second figure: this sweep's 5 trials and the first sweep's 5 (the same user's backtests)
    best_returns = next(t.returns for t in _local(platform).trials if t.id == result["best"]["id"])
    history = [metrics_per_bar_sharpe(t["metrics"]) for t in result["trials"] + swept["result"]["trials"]]
    expected = deflated_sharpe(best_returns, [s for s in history if s is not None])
    assert swept["result"]["overfitting"]["history_trials"] == 5
    assert result["overfitting"]["history_trials"] == 10
    assert result["overfitting"]["deflated_sharpe_history"] == pytest.approx(expected, abs=1e-9)


def test_cancel_stops_a_sweep_and_every_trial_ends(platform):
    search = {"space": ["fast=2:40:1", "slow=60:200:10"], "objective": "sharpe"}  # 39 x 15 trials
    with httpx.Client(base_url=platform.gateway_url, headers=_headers("sweeper-carol"), timeout=30) as http:
        submitted = _submit(http, search)
        _until_trials_end(platform, http, submitted["sweep_id"])  # mid-sweep: chunks ran, many are queued
        cancel = http.post(f"/sweep/{submitted['sweep_id']}/cancel")
        status = _until_ended(platform, http, submitted["sweep_id"])

    counts = status["counts"]
    assert cancel.status_code == 202, cancel.text
    assert status["state"] == "CANCELLED"
    assert counts["cancelled"] > 0 and counts["running"] == 0
    assert (
        counts["done"] + counts["failed"] + counts["skipped"] + counts["cancelled"] == counts["total"] == 585
    )


def test_a_sweep_over_the_trial_limit_or_with_a_bad_space_is_refused_naming_it(platform):
    with httpx.Client(base_url=platform.gateway_url, headers=_headers("sweeper-dan"), timeout=30) as http:
        huge = http.post(
            "/sweep/submit", json={**BASE, "search": {"space": ["fast=1:200:1", "slow=1:200:1"]}}
        )
        bad = http.post("/sweep/submit", json={**BASE, "search": {"space": ["fast=5:x:5"]}})
        grid = http.post("/sweep/submit", json={**BASE, "search": {"space": ["fast=int:5:50"]}})

    assert huge.status_code == 422 and huge.json()["error"]["code"] == "sweep_too_large"
    assert "40000 trials" in huge.json()["error"]["message"] and "10000" in huge.json()["error"]["message"]
    assert bad.status_code == 422 and "start:stop:step" in bad.text
    assert grid.status_code == 422 and "distribution" in grid.text


def test_the_stream_sends_each_trial_as_it_ends_and_the_final_status_then_closes(platform):
    search = {"space": ["fast=3,4,6", "slow=30"], "objective": "sharpe"}
    frames: list[dict[str, Any]] = []
    with httpx.Client(base_url=platform.gateway_url, headers=_headers("sweeper-erin"), timeout=30) as http:
        sweep_id = _submit(http, search)["sweep_id"]
        url = platform.gateway_url.replace("http://", "ws://") + f"/sweep/stream/{sweep_id}"
        with connect(url, additional_headers=_headers("sweeper-erin"), open_timeout=10) as ws:
            try:
                while True:
                    frames.append(json.loads(ws.recv(timeout=SWEEP_TIMEOUT_S)))
            except ConnectionClosedOK as closed:
                code = closed.rcvd.code if closed.rcvd else None
        trials = http.get(f"/sweep/{sweep_id}/trials").json()["trials"]
        foreign = platform.gateway_url.replace("http://", "ws://") + f"/sweep/stream/{sweep_id}"
        with connect(foreign, additional_headers=_headers("sweeper-frank"), open_timeout=10) as ws:
            refused = json.loads(ws.recv(timeout=30))

    statuses = [f["sweep"] for f in frames if f["type"] == "status"]
    streamed = [f["trial"] for f in frames if f["type"] == "trial"]
    assert code == 1000 and frames[-1]["type"] == "status"
    assert statuses[-1]["state"] == "SUCCESS" and statuses[-1]["finished_at"] is not None
    assert all(s["finished_at"] is None for s in statuses[:-1])
    assert sorted(t["id"] for t in streamed) == [0, 1, 2]  # each trial once
    assert {t["id"]: t["metrics"] for t in streamed} == {t["id"]: t["metrics"] for t in trials}
    assert refused["error"]["code"] == "sweep_not_found"
