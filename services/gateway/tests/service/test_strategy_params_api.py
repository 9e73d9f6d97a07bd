"""GET /strategy/{name}/params: the declared params a form is built from, read without running code."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.service

SOURCE = """from backtest_core.strategy import BaseStrategy, Param, Side, Signal
import backtest_core.strategy as bs

WINDOW = 20


class Breakout(BaseStrategy):
    params = {
        "window": Param(20, "channel length, bars", minimum=2),
        "depth": bs.Param(0.02, doc="distance from the channel, fraction", minimum=0.0, maximum=0.5),
        "short": Param(False, "also sell short"),
        "computed": Param(WINDOW, "a default that is a name, not a literal"),
    }

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        return Signal(Side.NO)
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_builtins_params_come_from_its_class(gateway, make_token):
    response = gateway.client.get("/strategy/sma_cross/params", headers=auth(make_token("alice")))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["version"]) == ("builtin", None)
    assert [(p["name"], p["type"], p["default"], p["minimum"]) for p in body["params"]] == [
        ("fast", "int", 10, 1),
        ("slow", "int", 30, 2),
    ]


def test_an_uploaded_strategys_literal_params_are_read_from_its_source_with_stored_defaults_on_top(
    gateway, make_token
):
    headers = auth(make_token("alice"))
    created = gateway.client.post(
        "/strategy/create",
        json={"name": "breakout", "source": SOURCE, "params": {"window": 30, "extra": 1.5}},
        headers=headers,
    )
    assert created.status_code == 201, created.text

    body = gateway.client.get("/strategy/breakout/params", headers=headers).json()

    assert (body["kind"], body["version"]) == ("user", 1)
    params = {p["name"]: p for p in body["params"]}
    assert list(params) == ["window", "depth", "short", "extra"]  # `computed` is not a literal: left out
    assert params["window"] == {
        "name": "window",
        "default": 30,  # the stored default over the declared 20
        "type": "int",
        "minimum": 2.0,
        "maximum": None,
        "doc": "channel length, bars",
    }
    depth = params["depth"]
    assert (depth["default"], depth["minimum"], depth["maximum"]) == (0.02, 0, 0.5)
    assert (params["short"]["type"], params["short"]["default"]) == ("bool", False)
    assert (params["extra"]["type"], params["extra"]["doc"]) == ("float", "")


def test_another_users_strategy_params_look_missing(gateway, make_token):
    gateway.client.post(
        "/strategy/create", json={"name": "breakout", "source": SOURCE}, headers=auth(make_token("alice"))
    )

    response = gateway.client.get("/strategy/breakout/params", headers=auth(make_token("bob")))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "strategy_not_found"
