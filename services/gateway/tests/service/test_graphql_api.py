"""GraphQL: symbols, strategies and backtests with metrics and trades, under REST's authorization."""

from __future__ import annotations

import pytest
from gateway_testdata import finished, result, symbol_record

pytestmark = pytest.mark.service

A, C = f"{1:032x}", f"{3:032x}"
BACKTESTS = "{ backtests { total items { taskId userId state strategyName metrics trades(limit: 2) { symbol pnl } } } }"  # noqa: E501


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query(gateway, text: str, headers: dict[str, str], **variables):
    return gateway.client.post("/graphql", json={"query": text, "variables": variables}, headers=headers)


@pytest.fixture
def data(gateway):
    gateway.store.put(finished(A, "alice", result("sma_cross", "BTCUSD"), minutes=1))
    gateway.store.put(finished(C, "bob", result("sma_cross", "ETHUSD"), minutes=2))
    gateway.market.by_name["BTCUSD"] = symbol_record("BTCUSD", volume=1.0)
    return gateway


def test_backtests_show_own_with_metrics_and_trades(data, make_token):
    response = query(data, BACKTESTS, auth(make_token("alice", "viewer")))

    assert response.status_code == 200
    page = response.json()["data"]["backtests"]
    assert page["total"] == 1
    [item] = page["items"]
    own = result("sma_cross", "BTCUSD")
    assert (item["taskId"], item["userId"], item["state"]) == (A, "alice", "SUCCESS")
    assert item["metrics"]["sharpe"] == pytest.approx(own["metrics"]["sharpe"])
    assert [t["pnl"] for t in item["trades"]] == pytest.approx([t["pnl"] for t in own["trades"][:2]])
    assert "bob" not in response.text


def test_foreign_backtest_is_task_not_found_like_a_missing_one_and_admin_sees_it(data, make_token):
    text = "query($id: String!) { backtest(taskId: $id) { userId metrics } }"

    foreign = query(data, text, auth(make_token("alice")), id=C).json()
    missing = query(data, text, auth(make_token("alice")), id=f"{7:032x}").json()
    admin = query(data, text, auth(make_token("root", "admin")), id=C).json()

    assert foreign["data"] == {"backtest": None}
    assert [e["extensions"] for e in foreign["errors"]] == [{"code": "task_not_found", "field": "taskId"}]
    assert [e["extensions"] for e in missing["errors"]] == [{"code": "task_not_found", "field": "taskId"}]
    assert "bob" not in str(foreign)
    assert admin["data"]["backtest"]["userId"] == "bob"
    admin_list = query(data, BACKTESTS, auth(make_token("root", "admin"))).json()
    assert admin_list["data"]["backtests"]["total"] == 2


def test_strategies_and_symbols(data, make_token):
    headers = auth(make_token("alice"))
    source = "from backtest_core.strategy import BaseStrategy\nclass S(BaseStrategy):\n    pass\n"
    data.client.post("/strategy/create", json={"name": "mine", "source": source}, headers=headers)
    data.client.post(
        "/strategy/create", json={"name": "his", "source": source}, headers=auth(make_token("bob"))
    )

    out = query(
        data,
        "{ strategies { total builtins { name params } items { name version className } } "
        "symbols { total items { symbol coverage { interval count } } } }",
        headers,
    ).json()["data"]

    assert out["strategies"]["items"] == [{"name": "mine", "version": 1, "className": "S"}]
    sma = next(b for b in out["strategies"]["builtins"] if b["name"] == "sma_cross")
    assert sma["params"]["fast"]["default"] == 10
    assert out["symbols"]["items"][0]["symbol"] == "BTCUSD"
    assert out["symbols"]["items"][0]["coverage"][0]["interval"] == "1d"
    foreign = query(data, '{ strategy(name: "his", owner: "bob") { source } }', headers).json()
    assert foreign["data"] == {"strategy": None}
    assert [e["extensions"]["code"] for e in foreign["errors"]] == ["strategy_not_found"]
    unknown = query(data, '{ symbol(symbol: "NOPE") { name } }', headers).json()
    assert [e["extensions"]["code"] for e in unknown["errors"]] == ["symbol_not_found"]


def test_anonymous_graphql_is_401(data):
    response = query(data, BACKTESTS, {})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_sweeps_and_their_trials_sorted_by_a_metric_only_for_their_owner(gateway, make_token):
    from gateway_testdata import finished_sweep

    mine, theirs = f"{5:032x}", f"{6:032x}"
    for sweep_id, user in ((mine, "alice"), (theirs, "bob")):
        record, trials = finished_sweep(sweep_id, user, [0.5, None, 1.5, -0.2])
        gateway.sweeps.records[sweep_id] = record
        for trial in trials:
            gateway.sweeps.put_trial(trial)
    text = (
        "query($id: String!, $sort: String!) { sweeps { total items { sweepId } }"
        " sweep(sweepId: $id) { state best }"
        ' sweepTrials(sweepId: $id, sort: $sort, state: "SUCCESS", limit: 2) { total items { id metrics } } }'
    )

    own = query(gateway, text, auth(make_token("alice", "viewer")), id=mine, sort="-sharpe").json()
    foreign = query(gateway, text, auth(make_token("alice", "viewer")), id=theirs, sort="-sharpe").json()
    bad = query(gateway, text, auth(make_token("alice", "viewer")), id=mine, sort="luck").json()

    data = own["data"]
    assert "errors" not in own
    assert data["sweeps"] == {"total": 1, "items": [{"sweepId": mine}]}
    assert (data["sweep"]["state"], data["sweep"]["best"]["id"]) == ("SUCCESS", 2)
    assert data["sweepTrials"]["total"] == 3
    assert [(t["id"], t["metrics"]["sharpe"]) for t in data["sweepTrials"]["items"]] == [(2, 1.5), (0, 0.5)]
    assert foreign["data"] is None or foreign["data"]["sweep"] is None
    assert {e["extensions"]["code"] for e in foreign["errors"]} == {"sweep_not_found"}
    assert "bob" not in str(foreign)
    assert [e["extensions"] for e in bad["errors"]] == [{"code": "invalid_query", "field": "sort"}]
