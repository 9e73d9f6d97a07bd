"""GraphQL walkforwards and walkforward(walkforwardId): the caller's own, paged, each fold as the REST
result has it; a foreign or unknown one is null with `walkforward_not_found`."""

from __future__ import annotations

import pytest
from gateway_testdata import MemoryWalkForwards, finished_walkforward, running_walkforward

pytestmark = pytest.mark.service

DONE, OPEN, THEIRS = f"{7:032x}", f"{8:032x}", f"{9:032x}"
FOLDS = (
    "folds { fold state sweepId train { start end } test { start end } params inSample outOfSample trades }"
)
HEAD = "state counts oosMetrics efficiency"
ONE = f"query($id: String!) {{ walkforward(walkforwardId: $id) {{ {HEAD} {FOLDS} }} }}"
PAGE = "query($offset: Int!) { walkforwards(limit: 1, offset: $offset) { total items { walkforwardId } } }"


@pytest.fixture
def walkforwards(gateway) -> MemoryWalkForwards:
    store = MemoryWalkForwards()
    store.records[DONE] = finished_walkforward(DONE, "alice")
    store.records[OPEN] = running_walkforward(OPEN, "alice")
    store.records[THEIRS] = finished_walkforward(THEIRS, "bob")
    gateway.app.state.walkforwards = store
    return store


def _graphql(gateway, make_token, text: str, user: str = "alice", **variables) -> dict:
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    answer = gateway.client.post("/graphql", json={"query": text, "variables": variables}, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict = answer.json()
    return body


def test_walkforwards_pages_the_callers_own_only(gateway, make_token, walkforwards):
    pages = [_graphql(gateway, make_token, PAGE, offset=k)["data"]["walkforwards"] for k in (0, 1, 2)]
    bobs = _graphql(gateway, make_token, PAGE, user="bob", offset=0)["data"]["walkforwards"]

    assert [p["total"] for p in pages] == [2, 2, 2]
    assert [[i["walkforwardId"] for i in p["items"]] for p in pages] == [[DONE], [OPEN], []]
    assert bobs == {"total": 1, "items": [{"walkforwardId": THEIRS}]}


def test_a_finished_walkforward_reads_as_its_rest_result(gateway, make_token, walkforwards):
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    rest = gateway.client.get(f"/walkforward/{DONE}/result", headers=headers).json()

    shown = _graphql(gateway, make_token, ONE, id=DONE)["data"]["walkforward"]

    assert (shown["state"], shown["counts"]) == ("SUCCESS", {"total": 3, "done": 3})
    assert [
        {
            "train": f["train"],
            "test": f["test"],
            "params": f["params"],
            "in_sample": f["inSample"],
            "out_of_sample": f["outOfSample"],
            "trades": f["trades"],
        }
        for f in shown["folds"]
    ] == rest["folds"]
    assert [(f["fold"], f["state"]) for f in shown["folds"]] == [(0, "DONE"), (1, "DONE"), (2, "DONE")]
    assert shown["folds"][0]["sweepId"] == walkforwards.records[DONE].folds[0].sweep_id
    assert shown["oosMetrics"] == rest["oos"]["metrics"]
    assert shown["efficiency"] == rest["efficiency"] and shown["efficiency"] > 0


def test_a_running_walkforward_has_its_windows_and_nothing_chosen_yet(gateway, make_token, walkforwards):
    shown = _graphql(gateway, make_token, ONE, id=OPEN)["data"]["walkforward"]

    assert (shown["state"], shown["oosMetrics"], shown["efficiency"]) == ("RUNNING", None, None)
    assert [(f["state"], f["params"], f["outOfSample"], f["trades"]) for f in shown["folds"]] == [
        ("TRAINING", None, None, 0)
    ] * 3
    # the same windows as the finished walk-forward over the same bars (2017-01-01, 365 + 180 days)
    assert shown["folds"][0]["train"] == {"start": "2017-01-01T00:00:00Z", "end": "2018-01-01T00:00:00Z"}
    assert shown["folds"][0]["test"] == {"start": "2018-01-01T00:00:00Z", "end": "2018-06-30T00:00:00Z"}


@pytest.mark.parametrize("walkforward_id", [THEIRS, f"{10:032x}", "not-an-id"])
def test_a_foreign_unknown_or_malformed_walkforward_is_null_with_walkforward_not_found(
    gateway, make_token, walkforwards, walkforward_id
):
    body = _graphql(gateway, make_token, ONE, id=walkforward_id)

    assert body["data"] == {"walkforward": None}
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "walkforward_not_found",
        "walkforwardId",
    )
    assert error["path"] == ["walkforward"]
