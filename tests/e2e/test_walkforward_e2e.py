"""Walk-forward validation through the whole platform: gateway, sweeper (a sweep per fold, then each
fold's test run), scheduler, runner sandboxes, results.

The platform's result must equal `backtest walkforward --json` run locally with the same options on the
shipped candle files: the same folds and params, metrics to 1e-9, the same stitched curve and efficiency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from backtest_cli.token import create_token
from backtest_core.contracts import Subject
from backtest_testinfra.stack import JWT_SECRET, Stack
from nats.errors import TimeoutError as NatsTimeout
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Its own sandbox instance: a platform of another test on the same Docker engine never removes its containers.
PLATFORM_ENV = {
    "SCHEDULER_PER_USER_IN_FLIGHT": "4",
    "SCHEDULER_MAX_IN_FLIGHT": "4",
    "RUNNER_INSTANCE_ID": f"e2e-walkforward-{uuid.uuid4().hex[:12]}",
}
BACKTEST = Path(sys.executable).parent / "backtest"
SHIPPED = Path(__file__).resolve().parents[2] / "data" / "binance" / "spot" / "monthly" / "klines"
BASE: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2017-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
FOLDS: dict[str, Any] = {"train": "365d", "test": 180}
SEARCH: dict[str, Any] = {"space": ["fast=5,10,20", "slow=20,50"], "objective": "sharpe:max"}
# the same walk-forward as options of `backtest walkforward`
OPTIONS = ["--strategy", "sma_cross", "--interval", "1d", "--start", "2017-01-01", "--end", "2020-01-01",
           "--grid", "fast=5,10,20", "--grid", "slow=20,50", "--objective", "sharpe:max",
           "--train", "365d", "--test", "180"]  # fmt: skip
TIMEOUT_S = 300.0


def _token(user: str) -> str:
    return create_token(user, "researcher", JWT_SECRET.encode(), ttl_s=3600)


def _client(platform: Stack, user: str = "wf-alice") -> httpx.Client:
    headers = {"Authorization": f"Bearer {_token(user)}"}
    return httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=30)


def _until_finished(platform: Stack, http: httpx.Client, walkforward_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = http.get(f"/walkforward/{walkforward_id}").json()
        if status["finished_at"] is not None:
            return status
        time.sleep(0.5)
    pytest.fail(f"walk-forward {walkforward_id} did not end in {TIMEOUT_S} s\n{platform.log_tails()}")


def _backtest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BACKTEST), "walkforward", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


@pytest.fixture(scope="module")
def walked(platform: Stack) -> dict[str, Any]:
    """One walk-forward of 3 folds x 6 trials, run to its end: the answer, its status and result."""
    with _client(platform) as http:
        submitted = http.post("/walkforward/submit", json={**BASE, **FOLDS, "search": SEARCH})
        assert submitted.status_code == 202, submitted.text
        body = submitted.json()
        status = _until_finished(platform, http, body["walkforward_id"])
        result = http.get(body["result_url"]).json()
    return {"submitted": body, "status": status, "result": result}


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    """`backtest walkforward --json` with the same options on the shipped files."""
    run = _backtest("--data", str(SHIPPED / "BTCUSD" / "1d"), "--symbol", "BTCUSD", *OPTIONS, "--json")
    assert run.returncode == 0, run.stderr
    document: dict[str, Any] = json.loads(run.stdout)
    return document


def _assert_same(remote: dict[str, Any], local: dict[str, Any]) -> None:
    assert [{k: f[k] for k in ("train", "test", "params", "trades")} for f in remote["folds"]] == [
        {k: f[k] for k in ("train", "test", "params", "trades")} for f in local["folds"]
    ]
    for mine, theirs in zip(remote["folds"], local["folds"], strict=True):
        for side in ("in_sample", "out_of_sample"):
            assert mine[side].keys() == theirs[side].keys()
            for key, value in theirs[side].items():
                assert mine[side][key] == pytest.approx(value, abs=1e-9, nan_ok=True), (side, key)
    assert remote["oos"]["metrics"] == pytest.approx(local["oos"]["metrics"], abs=1e-9)
    assert [p["time"] for p in remote["oos"]["equity"]] == [p["time"] for p in local["oos"]["equity"]]
    assert [p["equity"] for p in remote["oos"]["equity"]] == pytest.approx(
        [p["equity"] for p in local["oos"]["equity"]], abs=1e-9
    )
    assert remote["efficiency"] == pytest.approx(local["efficiency"], abs=1e-9)
    assert remote.keys() == local.keys() == {"folds", "oos", "efficiency"}


def test_a_walk_forward_ends_with_every_fold_swept_and_tested(walked, platform):
    status = walked["status"]

    assert walked["submitted"]["folds"] == 3
    assert walked["submitted"]["status_url"] == f"/walkforward/{walked['submitted']['walkforward_id']}"
    assert status["state"] == "SUCCESS", f"{status}\n{platform.log_tails()}"
    assert status["counts"] == {"total": 3, "done": 3}
    assert [f["state"] for f in status["folds"]] == ["DONE"] * 3
    with _client(platform) as http:
        sweeps = [http.get(f"/sweep/{f['sweep_id']}").json() for f in status["folds"]]
    assert [s["counts"]["done"] + s["counts"]["skipped"] for s in sweeps] == [6] * 3  # each fold a sweep
    assert [s["best"]["params"] for s in sweeps] == [f["params"] for f in status["folds"]]


def test_the_platforms_result_equals_backtest_walkforward_run_locally(walked, local):
    _assert_same(walked["result"], local)
    assert len(local["oos"]["equity"]) == 3 * 180


def test_another_user_gets_404_for_every_walk_forward_endpoint(walked, platform):
    walkforward_id = walked["submitted"]["walkforward_id"]
    with _client(platform, "wf-bob") as http:
        answers = [http.get(f"/walkforward/{walkforward_id}{tail}") for tail in ("", "/result")]
        cancel = http.post(f"/walkforward/{walkforward_id}/cancel")
        listed = http.get("/walkforward/list").json()

    assert [a.status_code for a in answers] == [404, 404]
    assert cancel.status_code == 404 and cancel.json()["error"]["code"] == "walkforward_not_found"
    assert listed["total"] == 0


def test_folds_that_do_not_fit_are_refused_naming_the_data(platform):
    with _client(platform, "wf-dan") as http:
        too_long = http.post(
            "/walkforward/submit", json={**BASE, "train": 1000, "test": 200, "search": SEARCH}
        )
        unreadable = http.post(
            "/walkforward/submit", json={**BASE, "train": "3 months", "test": 5, "search": SEARCH}
        )

    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_folds"
    assert (
        "no fold fits: train 1000 + gap 0 + test 200 bars > the data's 1083"
        in too_long.json()["error"]["message"]
    )
    assert (
        unreadable.status_code == 422
        and "a count of bars or a duration" in unreadable.json()["error"]["message"]
    )


def test_backtest_walkforward_remote_prints_the_same_json_as_the_local_run(platform, local):
    env = {**os.environ, "BACKTEST_GATEWAY": platform.gateway_url, "BACKTEST_TOKEN": _token("wf-erin")}

    run = _backtest("--remote", "--symbols", "BTCUSD", *OPTIONS, "--json", env=env)

    assert run.returncode == 0, f"{run.stderr}\n{platform.log_tails()}"
    assert "submitted walk-forward" in run.stderr and "(3 folds)" in run.stderr
    _assert_same(json.loads(run.stdout), local)


FOLD_KEYS = ("train", "test", "params", "in_sample", "out_of_sample", "trades")
GRAPHQL = """query($id: String!) { walkforward(walkforwardId: $id) { state oosMetrics efficiency
  folds { train { start end } test { start end } params inSample outOfSample trades } } }"""


def _follow(platform: Stack, user: str, walkforward_id: str) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame of WS /walkforward/stream until the server closes, and the close code."""
    url = platform.gateway_url.replace("http://", "ws://") + f"/walkforward/stream/{walkforward_id}"
    frames: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {_token(user)}"}
    with connect(url, additional_headers=headers, open_timeout=10, max_size=2**24) as ws:
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=TIMEOUT_S)))
        except ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd else None


def _nats_events(platform: Stack, walkforward_id: str) -> list[dict[str, Any]]:
    """The walk-forward's events on `walkforward.event.<id>`, oldest first, up to its finish (10 s at most:
    the sweeper publishes just after it stores)."""

    async def read() -> list[dict[str, Any]]:
        client = await nats.connect(platform.nats_url)
        try:
            subject = Subject.walkforward_event(walkforward_id)
            subscription = await client.jetstream().subscribe(subject, ordered_consumer=True)
            events: list[dict[str, Any]] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                events and events[-1]["message_id"].endswith("-finished")
            ):
                with contextlib.suppress(NatsTimeout):  # none yet: wait again
                    events.append(json.loads((await subscription.next_msg(timeout=1)).data))
            return events
        finally:
            await client.close()

    return asyncio.run(read())


def test_the_stream_sends_each_fold_once_and_graphql_reads_the_rest_result(platform):
    with _client(platform, "wf-gus") as http:
        submitted = http.post("/walkforward/submit", json={**BASE, **FOLDS, "search": SEARCH})
        assert submitted.status_code == 202, submitted.text
        walkforward_id = submitted.json()["walkforward_id"]
        frames, code = _follow(platform, "wf-gus", walkforward_id)
        result = http.get(submitted.json()["result_url"]).json()
        graphql = http.post("/graphql", json={"query": GRAPHQL, "variables": {"id": walkforward_id}}).json()
    refused, refused_code = _follow(platform, "wf-hal", walkforward_id)

    statuses = [f for f in frames if f["type"] == "status"]
    trained = sorted((f["fold"] for f in frames if f["type"] == "fold_trained"), key=lambda f: f["fold"])
    tested = [f["fold"] for f in frames if f["type"] == "fold_tested"]
    assert code == 1000 and frames[0]["type"] == "status" and frames[-1]["type"] == "status"
    assert frames[-1]["walkforward"]["state"] == "SUCCESS", f"{frames[-1]}\n{platform.log_tails()}"
    assert all(s["walkforward"]["finished_at"] is None for s in statuses[:-1])
    assert frames[-1]["walkforward"]["counts"] == {"total": 3, "done": 3}
    trials = frames[-1]["trials"]
    assert trials["total"] == 18 and trials["done"] + trials["skipped"] == 18  # 3 folds x 6 trials
    assert [f["fold"] for f in trained] == [f["fold"] for f in tested] == [0, 1, 2]  # each fold once
    assert [f["params"] for f in trained] == [f["params"] for f in result["folds"]]
    assert [{k: f[k] for k in FOLD_KEYS} for f in tested] == result["folds"]
    shown = graphql["data"]["walkforward"]
    assert "errors" not in graphql and shown["state"] == "SUCCESS"
    names = {"inSample": "in_sample", "outOfSample": "out_of_sample"}
    assert [{names.get(k, k): v for k, v in f.items()} for f in shown["folds"]] == result["folds"]
    assert (shown["oosMetrics"], shown["efficiency"]) == (result["oos"]["metrics"], result["efficiency"])
    assert [f["error"]["code"] for f in refused] == ["walkforward_not_found"] and refused_code == 4404
    published = _nats_events(platform, walkforward_id)
    events = {e["message_id"].removeprefix(f"{walkforward_id}-"): e for e in published}
    assert len(published) == len(events) == 8  # each milestone once, the finish last
    assert published[-1]["message_id"] == f"{walkforward_id}-SUCCESS-finished"
    assert sorted(events) == sorted(
        ["RUNNING", "SUCCESS-finished", *[f"fold-{k}-{m}" for k in range(3) for m in ("trained", "ended")]]
    )
    assert [events[f"fold-{k}-trained"]["params"] for k in range(3)] == [f["params"] for f in result["folds"]]
    assert [events[f"fold-{k}-ended"]["out_of_sample"] for k in range(3)] == [
        f["out_of_sample"] for f in result["folds"]
    ]


UPLOADED = '''from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal


class AboveMean(BaseStrategy):
    """BUY when the close crosses above the mean of the last `window` closes, SELL when it crosses below."""

    params = {"window": Param(20, "closes averaged", minimum=2)}

    def get_required_lookback(self):
        return int(self.values["window"])

    def decide(self, df, interval, **params):
        close = df.close
        mean = close.mean()
        if close[-2] <= mean < close[-1]:
            return Signal(Side.BUY)
        if close[-2] >= mean > close[-1]:
            return Signal(Side.SELL)
        return NO_SIGNAL
'''
UPLOADED_OPTIONS = ["--interval", "1d", "--start", "2017-01-01", "--end", "2020-01-01",
                    "--grid", "window=10,20", "--objective", "sharpe:max",
                    "--train", "365d", "--test", "180"]  # fmt: skip


def test_an_uploaded_strategys_walk_forward_equals_the_local_run_of_its_file(platform):
    path = platform.work / "above_mean.py"
    path.write_text(UPLOADED)
    shipped = ["--data", str(SHIPPED / "BTCUSD" / "1d"), "--symbol", "BTCUSD"]
    run = _backtest(*shipped, "--strategy", str(path), *UPLOADED_OPTIONS, "--json")
    assert run.returncode == 0, run.stderr
    local = json.loads(run.stdout)
    search = {"space": ["window=10,20"], "objective": "sharpe:max"}
    with _client(platform, "wf-fay") as http:
        created = http.post("/strategy/create", json={"name": "above_mean", "source": UPLOADED})
        assert created.status_code == 201, created.text
        body = {**BASE, **FOLDS, "strategy": {"user": "above_mean"}, "search": search}
        submitted = http.post("/walkforward/submit", json=body)
        assert submitted.status_code == 202, submitted.text
        status = _until_finished(platform, http, submitted.json()["walkforward_id"])
        assert status["state"] == "SUCCESS", f"{status}\n{platform.log_tails()}"
        result = http.get(submitted.json()["result_url"]).json()

    _assert_same(result, local)
