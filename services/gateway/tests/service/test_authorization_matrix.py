# ruff: noqa: E501  (the matrix reads best one endpoint per line)
"""Every endpoint x role x owner / non-owner / anonymous: the status code, and no foreign data in any body.

The owner `ownerxyz` has a finished backtest, a running one and an uploaded strategy whose source and
description carry a marker. A non-owner (or anonymous caller) must never receive the owner's id, the
marker or the owner's numbers; admins may.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from backtest_core.contracts import TaskState
from backtest_gateway.ports import TaskRecord
from gateway_testdata import candles, finished, result, symbol_record
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.service

OWNER = "ownerxyz"
MARK = "MARK_7f3c"
DONE, RUNNING = f"{0xA1:032x}", f"{0xB2:032x}"
SOURCE = f'"""{MARK}"""\nfrom backtest_core.strategy import BaseStrategy\n\n\nclass Owned(BaseStrategy):\n    pass\n'
NEW_SOURCE = "from backtest_core.strategy import BaseStrategy\n\n\nclass Other(BaseStrategy):\n    pass\n"
CONFIG = {"strategy": "sma_cross", "symbols": ["BTCUSD"]}

# Who calls: (name, user, role); None = anonymous.
CALLERS = {
    "anonymous": None,
    "viewer-owner": (OWNER, "viewer"),
    "researcher-owner": (OWNER, "researcher"),
    "admin": ("rootadmin", "admin"),
    "viewer-other": ("mallory", "viewer"),
    "researcher-other": ("mallory", "researcher"),
}
ORDER = list(CALLERS)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None
    expected: tuple[int, ...]  # one status per caller, in ORDER


# fmt: off
CALLS = {
    "health":             Call("GET", "/health", None, (200, 200, 200, 200, 200, 200)),
    "symbol-list":        Call("GET", "/symbol/list", None, (401, 200, 200, 200, 200, 200)),
    "symbol-get":         Call("GET", "/symbol/BTCUSD", None, (401, 200, 200, 200, 200, 200)),
    "symbol-filter":      Call("POST", "/symbol/filter", {"type": "spot"}, (401, 200, 200, 200, 200, 200)),
    "symbol-candles":     Call("GET", "/symbol/BTCUSD/candles?limit=5", None, (401, 200, 200, 200, 200, 200)),
    "strategy-list":      Call("GET", f"/strategy/list?user_id={OWNER}", None, (401, 200, 200, 200, 200, 200)),
    "strategy-create":    Call("POST", "/strategy/create", {"name": "fresh", "source": NEW_SOURCE},
                               (401, 403, 201, 201, 403, 201)),
    "strategy-get":       Call("GET", f"/strategy/owned?owner={OWNER}", None, (401, 200, 200, 200, 404, 404)),
    "strategy-put":       Call("PUT", f"/strategy/owned?owner={OWNER}", {"source": NEW_SOURCE},
                               (401, 403, 200, 200, 404, 404)),
    "strategy-delete":    Call("DELETE", f"/strategy/owned?owner={OWNER}", None, (401, 403, 204, 204, 404, 404)),
    "submit-builtin":     Call("POST", "/backtest/submit", CONFIG, (401, 403, 202, 202, 403, 202)),
    "submit-uploaded":    Call("POST", "/backtest/submit", {**CONFIG, "strategy": {"user": "owned"}},
                               (401, 403, 202, 404, 403, 404)),
    "backtest-status":    Call("GET", f"/backtest/status/{DONE}", None, (401, 200, 200, 200, 404, 404)),
    "backtest-results":   Call("GET", f"/backtest/results/{DONE}", None, (401, 200, 200, 200, 404, 404)),
    "backtest-cancel":    Call("POST", f"/backtest/cancel/{RUNNING}", None, (401, 403, 202, 202, 404, 404)),
    "backtest-list":      Call("GET", f"/backtest/list?user_id={OWNER}", None, (401, 200, 200, 200, 200, 200)),
    "portfolio":          Call("POST", "/analysis/portfolio", {"items": [{"task_id": DONE, "weight": 1}]},
                               (401, 200, 200, 200, 404, 404)),
    "performance":        Call("GET", f"/analysis/performance?user_id={OWNER}", None, (401, 200, 200, 200, 200, 200)),
    "graphql-backtest":   Call("POST", "/graphql", {"query": f'{{ backtest(taskId: "{DONE}") {{ userId metrics }} }}'},
                               (401, 200, 200, 200, 200, 200)),
    "graphql-backtests":  Call("POST", "/graphql", {"query": "{ backtests { total items { userId } } }"},
                               (401, 200, 200, 200, 200, 200)),
    "graphql-strategy":   Call("POST", "/graphql", {"query": f'{{ strategy(name: "owned", owner: "{OWNER}") {{ source }} }}'},
                               (401, 200, 200, 200, 200, 200)),
    "graphql-strategies": Call("POST", "/graphql", {"query": "{ strategies { total items { userId source } } }"},
                               (401, 200, 200, 200, 200, 200)),
}
# fmt: on


@pytest.fixture
def world(gateway, make_token):
    """The owner's backtests and strategy, and the market data every role may read."""
    gateway.store.put(finished(DONE, OWNER, result("sma_cross", "BTCUSD")))
    gateway.store.put(TaskRecord(task_id=RUNNING, user_id=OWNER, state=TaskState.PROGRESS, seq=3))
    gateway.market.by_name["BTCUSD"] = symbol_record("BTCUSD", volume=1.0)
    gateway.market.series[("BTCUSD", "1d")] = candles("BTCUSD")
    created = gateway.client.post(
        "/strategy/create",
        json={"name": "owned", "source": SOURCE, "description": MARK},
        headers={"Authorization": f"Bearer {make_token(OWNER, 'researcher')}"},
    )
    assert created.status_code == 201
    return gateway


def _headers(make_token, caller: str) -> dict[str, str]:
    who = CALLERS[caller]
    return {} if who is None else {"Authorization": f"Bearer {make_token(*who)}"}


def _foreign_markers() -> list[str]:
    equity = result("sma_cross", "BTCUSD")["metrics"]["final_equity"]
    return [OWNER, MARK, repr(equity)[:12]]


@pytest.mark.parametrize("caller", ORDER)
@pytest.mark.parametrize("name", list(CALLS))
def test_endpoint_answers_by_role_and_ownership_without_leaking(world, make_token, name, caller):
    call = CALLS[name]
    response = world.client.request(
        call.method, call.path, json=call.body, headers=_headers(make_token, caller)
    )

    expected = call.expected[ORDER.index(caller)]
    assert response.status_code == expected, response.text
    if caller in ("anonymous", "viewer-other", "researcher-other"):
        for marker in _foreign_markers():
            assert marker not in response.text, f"{marker} leaked to {caller}"
    if expected >= 400:
        assert set(response.json()) == {"error"}
    if caller in ("viewer-owner", "researcher-owner", "admin") and name in ("backtest-status", "portfolio"):
        assert OWNER in response.text or name == "portfolio"


@pytest.mark.parametrize("caller", ORDER)
def test_websocket_stream_follows_the_same_matrix(world, make_token, caller):
    who = CALLERS[caller]
    query = "" if who is None else f"?token={make_token(*who)}"
    frames: list[str] = []
    code = None
    with world.client.websocket_connect(f"/backtest/stream/{DONE}{query}") as ws:
        try:
            while True:
                frames.append(ws.receive_text())
        except WebSocketDisconnect as closed:
            code = closed.code

    expected = {"anonymous": 4401, "viewer-other": 4404, "researcher-other": 4404}.get(caller, 1000)
    assert code == expected
    if expected == 1000:
        assert json.loads(frames[-1])["state"] == "SUCCESS"
    else:
        assert all(marker not in "".join(frames) for marker in _foreign_markers())


def test_admin_sees_owner_data_that_others_do_not(world, make_token):
    admin = _headers(make_token, "admin")
    other = _headers(make_token, "researcher-other")

    admin_list = world.client.get(f"/backtest/list?user_id={OWNER}", headers=admin).json()
    other_list = world.client.get(f"/backtest/list?user_id={OWNER}", headers=other).json()
    admin_strategy = world.client.get(f"/strategy/owned?owner={OWNER}", headers=admin).json()

    assert {i["task_id"] for i in admin_list["items"]} == {DONE, RUNNING}
    assert other_list["items"] == [] and other_list["total"] == 0
    assert MARK in admin_strategy["source"]
