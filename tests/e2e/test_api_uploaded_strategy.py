"""An uploaded strategy through the whole platform: upload (static checks only) -> submit by name ->
sandbox run -> results, equal to a local run of the same source; plus the symbol and analysis API
against the real stores (the services run as processes, tests/e2e/conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_testinfra.stack import JWT_SECRET, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SOURCE = '''from backtest_core.strategy import BaseStrategy, Param, Side, Signal


class CloseAboveOpen(BaseStrategy):
    """BUY when the bar closes more than min_move above its open, SELL when as far below."""

    params = {"min_move": Param(0.0, "smallest close-open move, quote currency", minimum=0.0)}

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        move = df.close[-1] - df.open[-1]
        if move > p["min_move"]:
            return Signal(Side.BUY)
        if move < -p["min_move"]:
            return Signal(Side.SELL)
        return Signal(Side.NO)
'''
SUBMIT: dict[str, Any] = {
    "strategy": {"user": "close_above_open"},
    "params": {"min_move": 50.0},
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2018-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
WAIT_S = 180.0


def _client(platform: Stack, user: str = "uma", role: str = "researcher") -> httpx.Client:
    token = create_token(user, role, JWT_SECRET.encode(), ttl_s=3600)
    return httpx.Client(
        base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _wait_success(http: httpx.Client, task_id: str, platform: Stack) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status = http.get(f"/backtest/status/{task_id}").json()
        if status["state"] in {"SUCCESS", "FAILURE", "CANCELLED"}:
            results = http.get(f"/backtest/results/{task_id}")
            if results.status_code == 200 or status["state"] != "SUCCESS":
                assert results.status_code == 200, f"{status}\n{results.text}\n{platform.log_tails()}"
                return dict(results.json())
        time.sleep(0.3)
    pytest.fail(f"backtest {task_id} did not finish in {WAIT_S} s\n{platform.log_tails()}")


@pytest.fixture(scope="module")
def uploaded_run(platform: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload the strategy, submit it by name, wait for its results; return (status, results)."""
    with _client(platform) as http:
        created = http.post("/strategy/create", json={"name": "close_above_open", "source": SOURCE})
        assert created.status_code == 201, created.text
        submitted = http.post("/backtest/submit", json=SUBMIT)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        results = _wait_success(http, task_id, platform)
        status = http.get(f"/backtest/status/{task_id}").json()
    return status, results


def test_uploaded_strategy_runs_in_the_sandbox_and_equals_a_local_run(platform, uploaded_run):
    status, results = uploaded_run
    config = BacktestConfig.model_validate(status["config"])
    store = MongoCandleStore(platform.db)
    local = run_backtest(config, {"BTCUSD": store.load("BTCUSD", "1d")})

    assert status["strategy_ref"] == {"owner": "uma", "name": "close_above_open", "version": 1}
    assert config.strategy.class_name == "CloseAboveOpen"  # type: ignore[union-attr]
    assert config.params == {"min_move": 50.0}
    assert results["result"]["metrics"] == pytest.approx(
        local.metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12
    )
    assert local.metrics.trade_count > 10


def test_uploaded_run_ranks_and_combines_in_analysis(platform, uploaded_run):
    status, results = uploaded_run
    with _client(platform) as http:
        ranked = http.get("/analysis/performance?metric=total_return_pct").json()
        portfolio = http.post(
            "/analysis/portfolio", json={"items": [{"task_id": status["task_id"], "weight": 1}]}
        ).json()
    with _client(platform, "intruder") as other:
        foreign = other.post(
            "/analysis/portfolio", json={"items": [{"task_id": status["task_id"], "weight": 1}]}
        )

    assert [i["task_id"] for i in ranked["items"]] == [status["task_id"]]
    assert ranked["items"][0]["strategy"] == "user:close_above_open@v1"
    metrics = results["result"]["metrics"]
    assert portfolio["metrics"]["total_return_pct"] == pytest.approx(metrics["total_return_pct"], rel=1e-9)
    assert foreign.status_code == 404


def test_symbol_endpoints_read_the_ingested_store(platform):
    with _client(platform, "val", "viewer") as http:
        listed = http.get("/symbol/list").json()
        btc = http.get("/symbol/BTCUSD").json()
        filtered = http.post(
            "/symbol/filter", json={"has_interval": "1d", "covers_from": "2015-01-01T00:00:00Z"}
        )
        page = http.get("/symbol/BTCUSD/candles?interval=1d&start=2019-01-01T00:00:00Z&limit=3").json()

    assert [s["symbol"] for s in listed["items"]] == ["BTCUSD", "ETHUSD"]
    count = len(MongoCandleStore(platform.db).open_times("BTCUSD", "1d"))
    assert btc["coverage"]["1d"]["count"] == count
    assert filtered.status_code == 200
    assert [c["open_time"][:10] for c in page["items"]] == ["2019-01-01", "2019-01-02", "2019-01-03"]
    assert page["next_start"].startswith("2019-01-04")


PACKAGE_ENTRY = SOURCE.replace(
    "from backtest_core.strategy import BaseStrategy, Param, Side, Signal\n",
    "from backtest_core.strategy import BaseStrategy, Param, Side, Signal\nfrom moves import move_of\n",
).replace("move = df.close[-1] - df.open[-1]", "move = move_of(df) * 2.0")
PACKAGE_FILES = {"moves.py": "def move_of(df):\n    return df.close[-1] - df.open[-1]\n"}


def test_a_run_pinned_to_version_1_still_runs_it_after_version_2_a_package_exists(platform):
    with _client(platform, "vera") as http:
        created = http.post("/strategy/create", json={"name": "cao", "source": SOURCE})
        updated = http.put("/strategy/cao", json={"source": PACKAGE_ENTRY, "files": PACKAGE_FILES})
        assert (created.status_code, updated.status_code, updated.json()["version"]) == (201, 200, 2)
        pinned = http.post("/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao", "version": 1}})
        latest = http.post("/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao"}})
        assert (pinned.status_code, latest.status_code) == (202, 202), pinned.text + latest.text
        first = _wait_success(http, pinned.json()["task_id"], platform)
        second = _wait_success(http, latest.json()["task_id"], platform)
        statuses = [http.get(f"/backtest/status/{r.json()['task_id']}").json() for r in (pinned, latest)]
    candles = {"BTCUSD": MongoCandleStore(platform.db).load("BTCUSD", "1d")}
    local = [run_backtest(BacktestConfig.model_validate(s["config"]), candles) for s in statuses]

    assert [s["strategy_ref"]["version"] for s in statuses] == [1, 2]
    assert statuses[0]["config"]["strategy"]["source"] == SOURCE
    assert statuses[1]["config"]["strategy"]["files"] == PACKAGE_FILES
    assert first["result"]["metrics"] == pytest.approx(
        local[0].metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12
    )
    assert second["result"]["metrics"] == pytest.approx(
        local[1].metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12
    )
    # version 2 doubles the move it compares with min_move=50: it trades on smaller moves than version 1.
    assert local[1].metrics.trade_count != local[0].metrics.trade_count
