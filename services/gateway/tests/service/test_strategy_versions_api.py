"""Uploaded strategies keep every version: PUT adds one, pins run the pinned source, delete keeps history."""

from __future__ import annotations

import pytest
from backtest_core.model.config import SourceStrategy

pytestmark = pytest.mark.service

V1 = """from backtest_core.strategy import BaseStrategy, Param, Side, Signal


class CloseAboveOpen(BaseStrategy):
    params = {"min_move": Param(0.0, "smallest move", minimum=0.0)}

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        if df.close[-1] - df.open[-1] > p["min_move"]:
            return Signal(Side.BUY)
        return Signal(Side.SELL)
"""
V2 = V1.replace("class CloseAboveOpen", "class CloseAboveOpenV2")
SUBMIT = {"symbols": ["BTCUSD"], "params": {}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def two_versions(gateway, headers) -> None:
    """Upload `cao` (version 1, min_move 5) and PUT version 2 (another class, min_move 2)."""
    created = gateway.client.post(
        "/strategy/create", json={"name": "cao", "source": V1, "params": {"min_move": 5.0}}, headers=headers
    )
    updated = gateway.client.put(
        "/strategy/cao",
        json={"source": V2, "params": {"min_move": 2.0}, "description": "v2"},
        headers=headers,
    )
    assert (created.status_code, updated.status_code, updated.json()["version"]) == (201, 200, 2)


def test_run_pinned_to_version_1_runs_version_1_after_version_2_exists(gateway, make_token):
    headers = auth(make_token("alice"))
    two_versions(gateway, headers)

    response = gateway.client.post(
        "/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao", "version": 1}}, headers=headers
    )

    assert response.status_code == 202, response.text
    [command] = gateway.published.submits
    assert isinstance(command.config.strategy, SourceStrategy)
    assert command.config.strategy.source == V1
    assert (command.config.strategy.class_name, command.config.strategy.version) == ("CloseAboveOpen", 1)
    assert command.config.params == {"min_move": 5.0}
    status = gateway.client.get(f"/backtest/status/{response.json()['task_id']}", headers=headers).json()
    assert status["strategy_ref"] == {"owner": "alice", "name": "cao", "version": 1}


def test_unpinned_run_takes_the_latest_version(gateway, make_token):
    headers = auth(make_token("alice"))
    two_versions(gateway, headers)

    response = gateway.client.post(
        "/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao"}}, headers=headers
    )

    assert response.status_code == 202
    [command] = gateway.published.submits
    assert (command.config.strategy.source, command.config.params) == (V2, {"min_move": 2.0})  # type: ignore[union-attr]


def test_versions_lists_each_version_and_each_stays_readable_unchanged(gateway, make_token):
    headers = auth(make_token("alice"))
    two_versions(gateway, headers)

    listed = gateway.client.get("/strategy/cao/versions", headers=headers)
    first = gateway.client.get("/strategy/cao/versions/1", headers=headers)
    second = gateway.client.get("/strategy/cao/versions/2", headers=headers)

    assert listed.status_code == 200
    body = listed.json()
    assert (body["name"], body["latest"]) == ("cao", 2)
    assert [(v["version"], v["class_name"], v["params"], v["description"]) for v in body["versions"]] == [
        (1, "CloseAboveOpen", {"min_move": 5.0}, ""),
        (2, "CloseAboveOpenV2", {"min_move": 2.0}, "v2"),
    ]
    assert (first.json()["version"], first.json()["source"]) == (1, V1)
    assert (second.json()["version"], second.json()["source"]) == (2, V2)
    assert gateway.client.get("/strategy/cao", headers=headers).json()["version"] == 2


def test_pin_to_a_version_that_does_not_exist_is_404_naming_the_stored_versions(gateway, make_token):
    headers = auth(make_token("alice"))
    two_versions(gateway, headers)

    run = gateway.client.post(
        "/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao", "version": 7}}, headers=headers
    )
    read = gateway.client.get("/strategy/cao/versions/7", headers=headers)

    assert (run.status_code, run.json()["error"]["field"]) == (404, "strategy.version")
    assert run.json()["error"]["message"] == "strategy 'cao' has no version 7; its versions are [1, 2]"
    assert read.status_code == 404
    assert gateway.published.submits == []


def test_delete_stops_new_runs_but_keeps_versions_readable_and_a_new_upload_continues_the_numbers(
    gateway, make_token
):
    headers = auth(make_token("alice"))
    two_versions(gateway, headers)

    deleted = gateway.client.delete("/strategy/cao", headers=headers)
    run = gateway.client.post(
        "/backtest/submit", json={**SUBMIT, "strategy": {"user": "cao", "version": 1}}, headers=headers
    )
    listed = gateway.client.get("/strategy/list", headers=headers).json()
    history = gateway.client.get("/strategy/cao/versions", headers=headers).json()
    read = gateway.client.get("/strategy/cao", headers=headers)
    again = gateway.client.post("/strategy/create", json={"name": "cao", "source": V1}, headers=headers)

    assert deleted.status_code == 204
    assert (run.status_code, run.json()["error"]["field"]) == (404, "strategy.user")
    assert read.status_code == 404
    assert (listed["items"], listed["total"]) == ([], 0)
    assert ([v["version"] for v in history["versions"]], history["latest"]) == ([1, 2], None)
    assert gateway.client.get("/strategy/cao/versions/2", headers=headers).json()["source"] == V2
    assert (again.status_code, again.json()["version"]) == (201, 3)


def test_another_users_versions_are_404(gateway, make_token):
    two_versions(gateway, auth(make_token("bob")))
    alice = auth(make_token("alice"))

    for path in ("/strategy/cao/versions?owner=bob", "/strategy/cao/versions/1?owner=bob"):
        response = gateway.client.get(path, headers=alice)
        assert response.status_code == 404, path
        assert "CloseAboveOpen" not in response.text


def test_admin_reads_another_users_versions_with_owner(gateway, make_token):
    two_versions(gateway, auth(make_token("bob")))

    response = gateway.client.get(
        "/strategy/cao/versions/1?owner=bob", headers=auth(make_token("root", "admin"))
    )

    assert (response.status_code, response.json()["source"], response.json()["user_id"]) == (200, V1, "bob")
