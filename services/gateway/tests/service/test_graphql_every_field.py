"""GraphQL: every field of every type, in a query generated from the schema, against stored results."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from backtest_core.model.results import BacktestResult
from backtest_core.model.trade_log import PACKED
from backtest_gateway.graphql_api import schema
from gateway_testdata import (
    MemoryWalkForwards,
    finished,
    finished_sweep,
    finished_walkforward,
    result,
    symbol_record,
)

pytestmark = pytest.mark.service

A = f"{1:032x}"
S = f"{2:032x}"
W = f"{4:032x}"
SOURCE = "from backtest_core.strategy import BaseStrategy\nclass Mine(BaseStrategy):\n    pass\n"
REQUIRED_ARGS = {
    ("backtest", "taskId"): f'"{A}"',
    ("symbol", "symbol"): '"BTCUSD"',
    ("strategy", "name"): '"mine"',
    ("sweep", "sweepId"): f'"{S}"',
    ("sweepTrials", "sweepId"): f'"{S}"',
    ("walkforward", "walkforwardId"): f'"{W}"',
}


def _types() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in schema.introspect()["__schema"]["types"] if not t["name"].startswith("__")}


def _named(type_ref: dict[str, Any]) -> dict[str, Any]:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


def _selection(type_name: str, types: dict[str, dict[str, Any]], covered: set[str]) -> str:
    """Select every field of `type_name`, recursing into object types; record each type visited."""
    covered.add(type_name)
    parts = []
    for field in types[type_name]["fields"]:
        target = _named(field["type"])
        parts.append(field["name"])
        if target["kind"] == "OBJECT":
            parts.append(_selection(target["name"], types, covered))
    return "{ " + " ".join(parts) + " }"


def _query_of_everything() -> tuple[str, set[str]]:
    """One query selecting every root field (required arguments filled in) and everything below."""
    types, covered = _types(), {"Query"}
    roots = []
    for field in types["Query"]["fields"]:
        args = [
            f"{arg['name']}: {REQUIRED_ARGS[field['name'], arg['name']]}"
            for arg in field["args"]
            if arg["type"]["kind"] == "NON_NULL" and arg["defaultValue"] is None
        ]
        call = f"{field['name']}({', '.join(args)})" if args else field["name"]
        roots.append(call + " " + _selection(_named(field["type"])["name"], types, covered))
    return "{ " + " ".join(roots) + " }", covered


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _packed(res: dict[str, Any]) -> dict[str, Any]:
    """The result as the results writer stores it: trades as one packed string."""
    return json.loads(BacktestResult.model_validate(res).model_dump_json(context=PACKED))


@pytest.mark.parametrize("trades_stored", ["as objects", "packed"])
def test_every_field_of_every_type_resolves_against_a_stored_result(gateway, make_token, trades_stored):
    stored = result("sma_cross", "BTCUSD")
    document = stored if trades_stored == "as objects" else _packed(stored)
    assert isinstance(document["trades"], list if trades_stored == "as objects" else str)
    gateway.store.put(finished(A, "alice", document, minutes=1))
    gateway.market.by_name["BTCUSD"] = symbol_record("BTCUSD", volume=1.0)
    sweep, trials = finished_sweep(S, "alice", [0.5, None, 1.5])
    gateway.sweeps.records[S] = sweep
    for trial in trials:
        gateway.sweeps.put_trial(trial)
    walkforward = finished_walkforward(W, "alice")
    gateway.app.state.walkforwards = MemoryWalkForwards()
    gateway.app.state.walkforwards.records[W] = walkforward
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    created = gateway.client.post(
        "/strategy/create", json={"name": "mine", "source": SOURCE}, headers=headers
    )
    assert created.status_code == 201, created.text
    text, covered = _query_of_everything()

    response = gateway.client.post("/graphql", json={"query": text}, headers=headers)

    body = response.json()
    assert "errors" not in body, body.get("errors")
    assert covered == {name for name, t in _types().items() if t["kind"] == "OBJECT"}
    data = body["data"]
    trades = data["backtest"]["trades"]  # the first page (100 by default)
    assert len(trades) == min(100, len(stored["trades"])) > 0
    for got, want in zip(trades, stored["trades"], strict=False):
        for name, value in want.items():
            shown = got[_camel(name)]
            if name.endswith("_time"):
                assert datetime.fromisoformat(shown) == datetime.fromisoformat(value), name
            else:
                assert shown == (pytest.approx(value) if isinstance(value, float) else value), name
    assert data["backtest"]["metrics"] == stored["metrics"]
    assert data["backtests"]["items"][0]["trades"] == trades
    assert (data["backtest"]["taskId"], data["backtest"]["state"]) == (A, "SUCCESS")
    assert (
        datetime.fromisoformat(data["symbol"]["coverage"][0]["first"])
        == symbol_record("BTCUSD").coverage["1d"].first
    )
    assert (data["strategy"]["className"], data["strategy"]["version"]) == ("Mine", 1)
    assert (data["sweep"]["sweepId"], data["sweep"]["best"]["id"], data["sweep"]["counts"]["failed"]) == (
        S,
        2,
        1,
    )
    assert data["sweeps"]["items"][0]["overfitting"]["pbo"] == 0.25
    assert [(t["id"], t["state"], t["taskId"]) for t in data["sweepTrials"]["items"]] == [
        (t.id, t.state.value, t.task_id) for t in trials
    ]
    assert data["walkforwards"]["items"] == [data["walkforward"]]
    folds = data["walkforward"]["folds"]
    assert [(f["fold"], f["state"], f["train"]["start"], f["params"]) for f in folds] == [
        (k, "DONE", f["train"]["start"], f["params"]) for k, f in enumerate(walkforward.result["folds"])
    ]
    assert data["walkforward"]["oosMetrics"] == walkforward.result["oos"]["metrics"]


@pytest.mark.parametrize(
    ("task_id", "code"),
    [(f"{9:032x}", "task_not_found"), ("not-a-task-id", "invalid_task_id")],
)
def test_unknown_or_malformed_task_id_is_an_error_with_a_code(gateway, make_token, task_id, code):
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    text = "query($id: String!) { backtest(taskId: $id) { taskId } }"

    body = gateway.client.post(
        "/graphql", json={"query": text, "variables": {"id": task_id}}, headers=headers
    ).json()

    assert body["data"] == {"backtest": None}
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["path"]) == (code, ["backtest"])
    assert task_id in error["message"]
