"""A backtest through the whole platform: HTTP -> NATS -> scheduler -> runner -> Docker -> results -> MongoDB.

The services run as separate processes (tests/e2e/conftest.py) on the repo's real Bitstamp candles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from backtest_cli.main import main as cli_main
from backtest_cli.token import create_token
from backtest_core.contracts import MAX_RESULT_BYTES
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.symbol_store import MongoSymbolStore
from backtest_testinfra.shipped_data import BINANCE_KLINES
from backtest_testinfra.stack import JWT_SECRET, Stack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG: dict[str, Any] = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "symbols": ["BTCUSD", "ETHUSD"],
    "interval": "1d",
    "start": "2017-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
STREAM_TIMEOUT_S = 180.0
# A job shorter than the runner's progress interval reports no progress (RUNNER_PROGRESS_INTERVAL_S,
# 0.25 s by default); this module's backtests are that short, and the stream is to show progress frames.
PLATFORM_ENV = {"RUNNER_PROGRESS_INTERVAL_S": "0", "RUNNER_WARM_IDLE_S": "2"}
RESULTS_WAIT_S = 30.0


def _headers(user: str = "alice", role: str = "researcher") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user, role, JWT_SECRET.encode(), ttl_s=3600)}"}


def _stream(platform: Stack, task_id: str, user: str = "alice") -> tuple[list[dict[str, Any]], int]:
    """Every frame of WS /backtest/stream/{task_id} until the server closes, and the close code."""
    url = platform.gateway_url.replace("http", "ws", 1) + f"/backtest/stream/{task_id}"
    frames: list[dict[str, Any]] = []
    big = 2 * MAX_RESULT_BYTES  # a SUCCESS frame carries the whole result
    with connect(url, additional_headers=_headers(user), open_timeout=10, max_size=big) as ws:
        while True:
            try:
                frames.append(json.loads(ws.recv(timeout=STREAM_TIMEOUT_S)))
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else -1
                return frames, code
            except TimeoutError:
                pytest.fail(f"no event for {STREAM_TIMEOUT_S} s; got {frames}\n{platform.log_tails()}")


def _local_run(platform: Stack, config: dict[str, Any]) -> Any:
    """The same backtest run in-process on the candles the platform reads."""
    settings = BacktestConfig.model_validate(config)
    store = MongoCandleStore(platform.db)
    candles = {symbol: store.load(symbol, settings.interval) for symbol in settings.symbols}
    return run_backtest(settings, candles)


def _results(http: httpx.Client, task_id: str) -> httpx.Response:
    """GET the results; the results writer stores the terminal state shortly after the event, so retry 409."""
    deadline = time.monotonic() + RESULTS_WAIT_S
    while True:
        response = http.get(f"/backtest/results/{task_id}")
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def _later_trade_pages(http: httpx.Client, task_id: str, page: dict[str, Any]) -> list[httpx.Response]:
    """GET the trade pages after the first one, 5,000 trades (the most a page holds) at a time."""
    pages = []
    while page["trades_next_offset"] is not None:
        query = {"trades_offset": page["trades_next_offset"], "trades_limit": 5000, "equity_limit": 1}
        pages.append(http.get(f"/backtest/results/{task_id}", params=query))
        page = pages[-1].json()["page"]
    return pages


@dataclass(frozen=True)
class Finished:
    task_id: str
    status_after_submit: dict[str, Any]
    frames: list[dict[str, Any]]
    close_code: int
    results: dict[str, Any]


@pytest.fixture(scope="module")
def finished(platform: Stack) -> Finished:
    """Submit CONFIG over HTTP, follow it over WebSocket to the end, read its results."""
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        submitted = http.post("/backtest/submit", json=CONFIG)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        status = http.get(f"/backtest/status/{task_id}").json()
        frames, code = _stream(platform, task_id)
        results = _results(http, task_id)
    assert results.status_code == 200, f"{results.text}\n{platform.log_tails()}"
    return Finished(task_id, status, frames, code, results.json())


def test_status_is_readable_right_after_submit(finished):
    assert finished.status_after_submit["task_id"] == finished.task_id
    assert finished.status_after_submit["state"] in {"PENDING", "STARTED", "PROGRESS", "SUCCESS"}


def test_websocket_sees_started_progress_success_in_order_then_closes(finished):
    states = [frame["state"] for frame in finished.frames]

    assert states[0] == "PENDING"
    assert states[1] == "STARTED"
    assert states[-1] == "SUCCESS"
    assert states.count("PROGRESS") >= 2
    assert set(states[2:-1]) == {"PROGRESS"}
    assert [frame["seq"] for frame in finished.frames] == list(range(1, len(frames := finished.frames) + 1))
    assert [f["fraction"] for f in frames if f["state"] == "PROGRESS"] == sorted(
        f["fraction"] for f in frames if f["state"] == "PROGRESS"
    )
    assert finished.close_code == 1000


def test_platform_metrics_equal_a_local_run_on_the_same_candles(platform, finished):
    local = _local_run(platform, CONFIG)
    remote = finished.results["result"]

    assert remote["metrics"] == pytest.approx(local.metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12)
    assert remote["per_symbol"] == [item.model_dump(mode="json") for item in local.per_symbol]
    # the trade list holds the closed trades and a position still open after the last bar (marked open)
    assert len(remote["trades"]) == local.metrics.trade_count + local.metrics.open_trades
    assert local.metrics.trade_count > 0


def test_platform_metrics_equal_backtest_run_on_the_shipped_files(finished, capsys):
    """`backtest run` on the repo's kline files (no service) gives the platform's metrics exactly."""
    data = [f"--data={BINANCE_KLINES / symbol / '1d'}" for symbol in ("BTCUSD", "ETHUSD")]
    argv = ["run", *data, "--strategy", "sma_cross",
            "--param", "fast=10", "--param", "slow=30", "--start", "2017-01-01", "--end", "2020-01-01",
            "--json", "--no-progress"]  # fmt: skip

    assert cli_main(argv) == 0
    local = json.loads(capsys.readouterr().out)
    remote = finished.results["result"]

    assert {name: local[name] for name in remote["metrics"]} == remote["metrics"]
    assert local["per_symbol"] == remote["per_symbol"]


def test_result_is_persisted_in_mongodb(platform, finished):
    doc = platform.db[BACKTESTS_COLLECTION].find_one({"_id": finished.task_id})

    assert (doc["state"], doc["user_id"]) == ("SUCCESS", "alice")
    assert doc["seq"] == len(finished.frames)
    assert doc["result"]["metrics"]["final_equity"] == finished.results["result"]["metrics"]["final_equity"]


def test_same_config_again_is_served_from_the_cache_without_a_run(platform, finished, docker_client):
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=30) as http:
        again = http.post("/backtest/submit", json={**CONFIG, "parallel_symbols": 2}).json()["task_id"]
        frames, code = _stream(platform, again)
        results = _results(http, again).json()

    assert again != finished.task_id
    assert [frame["state"] for frame in frames] == ["PENDING", "SUCCESS"]
    assert code == 1000
    assert results["cached_from"] == finished.task_id
    assert results["result"]["metrics"] == finished.results["result"]["metrics"]
    assert _sandbox_events(platform, docker_client, again) == []  # answered without a container


def test_another_user_cannot_see_the_task(platform, finished):
    status = httpx.get(f"{platform.gateway_url}/backtest/status/{finished.task_id}", headers=_headers("bob"))
    frames, code = _stream(platform, finished.task_id, user="bob")

    assert status.status_code == 404
    assert frames[0]["error"]["code"] == "task_not_found"
    assert code == 4404


def test_cli_submit_shows_the_metrics_of_a_platform_run(platform):
    env = {
        **os.environ,
        "BACKTEST_TOKEN": create_token("carol", "researcher", JWT_SECRET.encode(), ttl_s=600),
    }
    argv = ["submit", "--strategy", "sma_cross", "--symbols", "BTCUSD", "--param", "fast=5",
            "--param", "slow=20", "--start", "2018-01-01", "--end", "2019-06-01",
            "--gateway", platform.gateway_url, "--json"]  # fmt: skip
    cli = [sys.executable, "-c", "import sys; from backtest_cli.main import main; sys.exit(main())"]

    done = subprocess.run(cli + argv, env=env, capture_output=True, text=True, timeout=300, cwd=os.getcwd())

    assert done.returncode == 0, f"{done.stderr}\n{platform.log_tails()}"
    out = json.loads(done.stdout)
    local = _local_run(
        platform,
        {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTCUSD"], "interval": "1d",
         "start": "2018-01-01T00:00:00Z", "end": "2019-06-01T00:00:00Z"},
    )  # fmt: skip
    assert out["state"] == "SUCCESS"
    assert out["final_equity"] == local.metrics.final_equity
    assert out["trade_count"] == local.metrics.trade_count


def test_cli_list_and_results_show_a_platform_run_and_its_per_symbol_rows(platform, finished, capsys):
    token = [
        "--gateway",
        platform.gateway_url,
        "--token",
        _headers()["Authorization"].removeprefix("Bearer "),
    ]

    assert cli_main(["list", "--state", "SUCCESS", "--json", *token]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert cli_main(["results", finished.task_id, *token]) == 0
    table = capsys.readouterr().out.splitlines()

    assert finished.task_id in [item["task_id"] for item in listed["items"]]
    rows = {
        line.split()[0]: line.split()[1] for line in table if line.split()[:1] in (["BTCUSD"], ["ETHUSD"])
    }
    per_symbol = finished.results["result"]["per_symbol"]
    assert rows == {item["symbol"]: str(item["trade_count"]) for item in per_symbol}


def _sandbox_events(platform: Stack, docker_client: Any, task_id: str | None = None) -> list[dict[str, Any]]:
    """Docker events of this platform's sandboxes (of one task when given), since the platform started."""
    labels = [f"io.backtest.runner_id={platform.runner_ids()[0]}"]
    if task_id is not None:
        labels.append(f"io.backtest.task_id={task_id}")
    filters = {"label": labels, "type": "container"}
    until = int(time.time()) + 1
    return list(docker_client.events(since=platform.started_at, until=until, filters=filters, decode=True))


def test_a_run_used_one_container_and_none_is_left(platform, finished, docker_client):
    # The container stays warm for the user's next batch RUNNER_WARM_IDLE_S, then goes.
    deadline = time.monotonic() + float(PLATFORM_ENV["RUNNER_WARM_IDLE_S"]) + 30
    while True:
        events = _sandbox_events(platform, docker_client, finished.task_id)
        everything = _sandbox_events(platform, docker_client)
        actions = [e["Action"] for e in everything]
        if actions.count("create") == actions.count("destroy") or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert [e["Action"] for e in events if e["Action"] in ("create", "destroy")] == ["create", "destroy"]
    created = sum(e["Action"] == "create" for e in everything)
    destroyed = sum(e["Action"] == "destroy" for e in everything)
    assert created == destroyed >= 1
    labels = [f"io.backtest.runner_id={platform.runner_ids()[0]}"]
    assert docker_client.containers.list(all=True, filters={"label": labels}) == []


# Results with tens of thousands of trades: a result travels in one message (RunSucceeded, then
# BacktestSucceeded) and is stored in one MongoDB document, its trades packed
# (backtest_core.model.trade_pack). One of 55,000 trades (18 MB as JSON objects, 4 MiB packed) must arrive
# whole; one over MAX_RESULT_BYTES packed must end as an output_limit FAILURE the user can act on, not be
# retried.
MINUTE_NS = 60_000_000_000
WALK_START_NS = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z


def _minute_walk(symbol: str, bars: int, seed: int) -> Candles:
    """A fixed-seed 1-minute random walk (the shipped files are daily: too few bars for this size)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, bars)))
    open_ = np.r_[100.0, close[:-1]]
    times = WALK_START_NS + np.arange(bars, dtype=np.int64) * MINUTE_NS
    high, low = np.maximum(open_, close) * 1.0005, np.minimum(open_, close) * 0.9995
    return Candles(symbol, "1m", times, open_, high, low, close, np.ones(bars))


def _store_walk(platform: Stack, candles: Candles) -> None:
    """Write the walk and its coverage into the symbol catalog, as `backtest ingest` does."""
    store = MongoCandleStore(platform.db)
    store.write(candles)
    MongoSymbolStore(platform.db).set_coverage(store.coverage(candles.symbol, candles.interval))


def _walk_config(symbol: str) -> dict[str, Any]:
    # sma_cross 2/3 on a random walk trades every ~5 bars.
    return {"strategy": "sma_cross", "params": {"fast": 2, "slow": 3}, "symbols": [symbol], "interval": "1m"}


def test_a_result_of_55_000_trades_is_delivered_and_stored_whole(platform):
    _store_walk(platform, _minute_walk("WALKAUSDT", 300_000, seed=2))
    config = _walk_config("WALKAUSDT")
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=120) as http:
        task_id = http.post("/backtest/submit", json=config).json()["task_id"]
        frames, _ = _stream(platform, task_id)
        first = _results(http, task_id)
        pages = [first, *_later_trade_pages(http, task_id, first.json()["page"])]

    assert frames[-1]["state"] == "SUCCESS", f"{frames[-1]}\n{platform.log_tails()}"
    # as JSON objects it would not fit one message: it comes in pages of at most 5,000 trades
    assert sum(len(page.content) for page in pages) > MAX_RESULT_BYTES
    remote = first.json()["result"]
    remote["trades"] = [trade for page in pages for trade in page.json()["result"]["trades"]]
    local = _local_run(platform, config)
    closed_and_open = local.metrics.trade_count + local.metrics.open_trades
    assert first.json()["page"]["trades_total"] == len(remote["trades"]) == closed_and_open > 50_000
    assert remote["trades"][-1] == json.loads(local.trades[-1].model_dump_json())
    assert remote["metrics"]["final_equity"] == local.metrics.final_equity


def test_a_result_over_the_platform_limit_fails_as_output_limit_without_a_retry(platform):
    _store_walk(platform, _minute_walk("WALKBUSDT", 1_500_000, seed=2))  # ~277,000 trades
    with httpx.Client(base_url=platform.gateway_url, headers=_headers(), timeout=120) as http:
        task_id = http.post("/backtest/submit", json=_walk_config("WALKBUSDT")).json()["task_id"]
        frames, _ = _stream(platform, task_id)
        status = http.get(f"/backtest/status/{task_id}").json()

    assert [f["state"] for f in frames if f["state"] != "PROGRESS"] == ["PENDING", "STARTED", "FAILURE"]
    failure = status["failure"]
    assert failure["reason"] == "output_limit", f"{status}\n{platform.log_tails()}"
    assert "trades), over the platform's limit of 15.0 MiB" in failure["message"]
    assert "shorter date range" in failure["message"]
