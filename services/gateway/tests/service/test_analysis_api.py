"""Portfolio analysis and performance ranking over real engine results, own backtests only."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.contracts import TaskState
from backtest_gateway.ports import TaskRecord
from gateway_testdata import finished, result

pytestmark = pytest.mark.service

A, B, C, D = (f"{i:032x}" for i in range(1, 5))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def done(gateway):
    gateway.store.put(finished(A, "alice", result("sma_cross", "BTCUSD"), minutes=1))
    gateway.store.put(finished(B, "alice", result("momentum", "ETHUSD"), minutes=2))
    gateway.store.put(finished(C, "bob", result("sma_cross", "ETHUSD"), minutes=3))
    gateway.store.put(TaskRecord(task_id=D, user_id="alice", state=TaskState.PROGRESS, seq=2))
    return gateway


def test_portfolio_combines_curves_by_weight_from_capital(done, make_token):
    body = {"items": [{"task_id": A, "weight": 3}, {"task_id": B, "weight": 1}], "capital": 1000}

    response = done.client.post("/analysis/portfolio", json=body, headers=auth(make_token("alice")))

    assert response.status_code == 200
    out = response.json()
    assert out["weights"] == [0.75, 0.25]
    ra, rb = result("sma_cross", "BTCUSD"), result("momentum", "ETHUSD")
    growth_a = ra["metrics"]["final_equity"] / ra["metrics"]["start_equity"]
    growth_b = rb["metrics"]["final_equity"] / rb["metrics"]["start_equity"]
    assert out["equity_curve"][0]["equity"] == pytest.approx(1000.0)
    assert out["equity_curve"][-1]["equity"] == pytest.approx(750 * growth_a + 250 * growth_b)
    assert out["metrics"]["total_return_pct"] == pytest.approx((0.75 * growth_a + 0.25 * growth_b - 1) * 100)
    assert out["correlation"][0][0] == pytest.approx(1.0)
    assert out["correlation"][0][1] == out["correlation"][1][0]
    assert -1.0 <= out["correlation"][0][1] <= 1.0
    assert out["requested_weights"] == [3, 1]


def _returns_on(points: list[dict], times: list[str]) -> np.ndarray:
    equity = np.array([p["equity"] for p in points if p["time"] in set(times)])
    return equity[1:] / equity[:-1] - 1


def test_portfolio_correlates_on_the_overlap_of_curves_that_start_at_different_times(done, make_token):
    body = {"items": [{"task_id": A, "weight": 1}, {"task_id": B, "weight": 1}]}

    out = done.client.post("/analysis/portfolio", json=body, headers=auth(make_token("alice"))).json()

    btc, eth = result("sma_cross", "BTCUSD")["equity_curve"], result("momentum", "ETHUSD")["equity_curve"]
    common = sorted({p["time"] for p in btc} & {p["time"] for p in eth})
    assert btc[0]["time"] < eth[0]["time"] == common[0]  # ETHUSD's candles start in 2017-11
    expected = float(np.corrcoef(_returns_on(btc, common), _returns_on(eth, common))[0, 1])
    assert out["correlation"][0][1] == pytest.approx(expected, rel=1e-12)
    assert out["correlation_periods"] == [[len(btc) - 1, len(common) - 1], [len(common) - 1, len(eth) - 1]]


def test_portfolio_of_one_backtest_reproduces_its_own_metrics(done, make_token):
    body = {"items": [{"task_id": A, "weight": 1}], "capital": 1_000_000}

    out = done.client.post("/analysis/portfolio", json=body, headers=auth(make_token("alice"))).json()

    own = result("sma_cross", "BTCUSD")["metrics"]
    for name in ("total_return_pct", "sharpe", "sortino", "max_drawdown_pct", "cagr_pct"):
        assert out["metrics"][name] == pytest.approx(own[name], rel=1e-9), name


def test_portfolio_with_foreign_or_unfinished_backtest_is_refused(done, make_token):
    headers = auth(make_token("alice"))

    foreign = done.client.post(
        "/analysis/portfolio", json={"items": [{"task_id": C, "weight": 1}]}, headers=headers
    )
    running = done.client.post(
        "/analysis/portfolio", json={"items": [{"task_id": D, "weight": 1}]}, headers=headers
    )

    assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "task_not_found")
    assert "bob" not in foreign.text
    assert (running.status_code, running.json()["error"]["code"]) == (409, "not_finished")


def test_performance_ranks_own_backtests_by_any_metric(done, make_token):
    headers = auth(make_token("alice"))

    by_sharpe = done.client.get("/analysis/performance?metric=sharpe", headers=headers).json()
    by_return = done.client.get(
        "/analysis/performance?metric=total_return_pct&descending=false", headers=headers
    ).json()

    sharpe = {
        A: result("sma_cross", "BTCUSD")["metrics"]["sharpe"],
        B: result("momentum", "ETHUSD")["metrics"]["sharpe"],
    }
    expected = sorted(sharpe, key=sharpe.get, reverse=True)
    assert [i["task_id"] for i in by_sharpe["items"]] == expected
    assert [i["rank"] for i in by_sharpe["items"]] == [1, 2]
    assert by_sharpe["items"][0]["value"] == pytest.approx(max(sharpe.values()))
    returns = [i["value"] for i in by_return["items"]]
    assert returns == sorted(returns) and len(returns) == 2
    assert {i["user_id"] for i in by_sharpe["items"]} == {"alice"}


def test_performance_filters_by_bounds_and_pages(done, make_token):
    headers = auth(make_token("alice"))
    values = sorted(
        result(s, y)["metrics"]["sharpe"] for s, y in (("sma_cross", "BTCUSD"), ("momentum", "ETHUSD"))
    )
    mid = float(np.mean(values))

    high = done.client.get(f"/analysis/performance?metric=sharpe&min_value={mid}", headers=headers).json()
    page = done.client.get("/analysis/performance?metric=sharpe&limit=1", headers=headers).json()

    assert [i["value"] for i in high["items"]] == [pytest.approx(values[1])]
    assert (page["total"], page["next_offset"], len(page["items"])) == (2, 1, 1)


def test_performance_with_unknown_metric_is_422(done, make_token):
    response = done.client.get("/analysis/performance?metric=luck", headers=auth(make_token("alice")))

    assert (response.status_code, response.json()["error"]["field"]) == (422, "metric")
