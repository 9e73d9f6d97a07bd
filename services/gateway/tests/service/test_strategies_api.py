"""Uploaded strategies: static checks at upload, versions, ownership, and resolution at submit."""

from __future__ import annotations

import pytest
from backtest_core.model.config import SourceStrategy

pytestmark = pytest.mark.service

SOURCE = """from backtest_core.strategy import BaseStrategy, Param, Side, Signal


class CloseAboveOpen(BaseStrategy):
    params = {"min_move": Param(0.0, "smallest move", minimum=0.0)}

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        move = df.close[-1] - df.open[-1]
        if move > p["min_move"]:
            return Signal(Side.BUY)
        if move < -p["min_move"]:
            return Signal(Side.SELL)
        return Signal(Side.NO)
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(gateway, headers, name="cao", source=SOURCE, **extra):
    body = {"name": name, "source": source, "params": {"min_move": 5.0}, **extra}
    return gateway.client.post("/strategy/create", json=body, headers=headers)


def test_create_stores_version_1_with_detected_class(gateway, make_token):
    response = create(gateway, auth(make_token("alice")))

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["version"], body["class_name"], body["user_id"]) == (
        "cao",
        1,
        "CloseAboveOpen",
        "alice",
    )
    assert response.headers["location"] == "/strategy/cao"
    assert gateway.strategies.records[("alice", "cao")].params == {"min_move": 5.0}


def test_syntax_error_is_refused_at_upload_with_line_number(gateway, make_token):
    response = create(gateway, auth(make_token("alice")), source="class X(BaseStrategy)\n    pass\n")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "strategy_rejected"
    assert error["field"] == "source"
    assert error["message"].startswith("syntax error in strategy source at line 1")
    assert gateway.strategies.records == {}


def test_source_without_strategy_class_is_refused_without_running_it(gateway, make_token, tmp_path):
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\nclass Helper:\n    pass\n"

    response = create(gateway, auth(make_token("alice")), source=source)

    assert response.status_code == 422
    assert "exactly one top-level class deriving from BaseStrategy" in response.json()["error"]["message"]
    assert not marker.exists()


def test_duplicate_name_and_builtin_name_are_409(gateway, make_token):
    headers = auth(make_token("alice"))
    create(gateway, headers)

    again = create(gateway, headers)
    builtin = create(gateway, headers, name="sma_cross")

    assert (again.status_code, again.json()["error"]["field"]) == (409, "name")
    assert builtin.status_code == 409
    assert "built-ins" in builtin.json()["error"]["message"]


def test_put_adds_version_2_and_expected_version_guards_it(gateway, make_token):
    headers = auth(make_token("alice"))
    create(gateway, headers)
    body = {"source": SOURCE.replace("0.0,", "1.0,"), "params": {"min_move": 1.0}}

    updated = gateway.client.put("/strategy/cao", json=body, headers=headers)
    stale = gateway.client.put("/strategy/cao", json={**body, "expected_version": 1}, headers=headers)

    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert (stale.status_code, stale.json()["error"]["field"]) == (409, "expected_version")
    assert gateway.client.get("/strategy/cao", headers=headers).json()["version"] == 2


def test_list_has_builtins_with_params_and_only_own_uploads(gateway, make_token):
    create(gateway, auth(make_token("alice")))
    create(gateway, auth(make_token("bob")), name="bobs")

    body = gateway.client.get("/strategy/list", headers=auth(make_token("alice"))).json()

    names = [b["name"] for b in body["builtins"]]
    assert "sma_cross" in names and "momentum" in names
    sma = next(b for b in body["builtins"] if b["name"] == "sma_cross")
    assert {p["name"]: p["default"] for p in sma["params"]} == {"fast": 10, "slow": 30}
    assert [i["name"] for i in body["items"]] == ["cao"]
    assert (body["total"], body["next_offset"]) == (1, None)


def test_foreign_strategy_is_404_on_get_put_delete_and_is_kept(gateway, make_token):
    create(gateway, auth(make_token("bob")), name="bobs")
    alice = auth(make_token("alice"))

    for method, kwargs in (("get", {}), ("put", {"json": {"source": SOURCE}}), ("delete", {})):
        response = getattr(gateway.client, method)("/strategy/bobs?owner=bob", headers=alice, **kwargs)
        assert response.status_code == 404, method
        assert "bob'" not in response.text and "CloseAboveOpen" not in response.text
    assert ("bob", "bobs") in gateway.strategies.records


def test_submit_with_user_strategy_carries_source_class_version_and_merged_params(gateway, make_token):
    headers = auth(make_token("alice"))
    create(gateway, headers)
    gateway.client.put("/strategy/cao", json={"source": SOURCE, "params": {"min_move": 2.0}}, headers=headers)
    config = {"strategy": {"user": "cao"}, "symbols": ["BTCUSD"], "params": {}}

    response = gateway.client.post("/backtest/submit", json=config, headers=headers)

    assert response.status_code == 202
    [command] = gateway.published.submits
    assert isinstance(command.config.strategy, SourceStrategy)
    assert command.config.strategy.source == SOURCE
    assert (command.config.strategy.name, command.config.strategy.version) == ("cao", 2)
    assert command.config.strategy.class_name == "CloseAboveOpen"
    assert command.config.params == {"min_move": 2.0}
    status = gateway.client.get(f"/backtest/status/{response.json()['task_id']}", headers=headers).json()
    assert status["strategy_ref"] == {"owner": "alice", "name": "cao", "version": 2}


def test_submit_of_unknown_or_foreign_user_strategy_or_missing_version_is_refused(gateway, make_token):
    create(gateway, auth(make_token("bob")), name="bobs")
    alice = auth(make_token("alice"))
    create(gateway, alice)

    foreign = gateway.client.post(
        "/backtest/submit", json={"strategy": {"user": "bobs"}, "symbols": ["BTCUSD"]}, headers=alice
    )
    missing = gateway.client.post(
        "/backtest/submit",
        json={"strategy": {"user": "cao", "version": 7}, "symbols": ["BTCUSD"]},
        headers=alice,
    )

    assert (foreign.status_code, foreign.json()["error"]["field"]) == (404, "strategy.user")
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "strategy.version")
    assert gateway.published.submits == []


def test_viewer_reads_but_may_not_create(gateway, make_token):
    response = create(gateway, auth(make_token("val", "viewer")))

    assert response.status_code == 403
    assert gateway.client.get("/strategy/list", headers=auth(make_token("val", "viewer"))).status_code == 200


@pytest.mark.parametrize("key", ["min\x00move", "1st", "with space", ""])
def test_param_names_that_are_not_identifiers_are_422_naming_params(gateway, make_token, key):
    response = create(gateway, auth(make_token("alice")), params={key: 1.0})

    assert response.status_code == 422
    assert response.json()["error"]["field"].startswith("params")
    assert gateway.client.get("/strategy/cao", headers=auth(make_token("alice"))).status_code == 404
