"""REST behaviour of /backtest over FastStream's in-memory NATS broker and an in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from backtest_core.contracts import Failure, FailureReason, TaskState
from backtest_core.model.config import BacktestConfig
from backtest_gateway.ports import StrategyRef, TaskRecord

pytestmark = pytest.mark.service

CONFIG = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "symbols": ["BTCUSD"],
    "interval": "1d",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_submit_returns_202_and_publishes_submit_with_user_id(gateway, make_token):
    response = gateway.client.post("/backtest/submit", json=CONFIG, headers=auth(make_token("alice")))

    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "PENDING"
    assert len(body["task_id"]) == 32
    assert response.headers["location"] == f"/backtest/status/{body['task_id']}"
    [command] = gateway.published.submits
    assert command.task_id == body["task_id"]
    assert command.user_id == "alice"
    assert command.config.symbols == ["BTCUSD"]
    assert command.config.params == {"fast": 10, "slow": 30}
    assert gateway.published.msg_ids == [command.message_id]


def test_status_right_after_submit_is_pending_at_seq_0(gateway, make_token):
    headers = auth(make_token("alice"))
    task_id = gateway.client.post("/backtest/submit", json=CONFIG, headers=headers).json()["task_id"]

    status = gateway.client.get(f"/backtest/status/{task_id}", headers=headers)

    assert status.status_code == 200
    assert status.json()["state"] == "PENDING"
    assert status.json()["seq"] == 0
    assert status.json()["user_id"] == "alice"
    assert status.json()["config"]["symbols"] == ["BTCUSD"]


def test_same_idempotency_key_returns_same_task_and_publishes_once(gateway, make_token):
    headers = {**auth(make_token("alice")), "Idempotency-Key": "run-42"}

    first = gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)
    second = gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["task_id"] == first.json()["task_id"]
    assert len(gateway.published.submits) == 1
    assert len(gateway.store.records) == 1
    assert gateway.published.submits[0].idempotency_key == "run-42"


def test_same_idempotency_key_of_another_user_is_a_different_task(gateway, make_token):
    first = gateway.client.post(
        "/backtest/submit", json=CONFIG, headers={**auth(make_token("alice")), "Idempotency-Key": "k"}
    )
    second = gateway.client.post(
        "/backtest/submit", json=CONFIG, headers={**auth(make_token("bob")), "Idempotency-Key": "k"}
    )

    assert second.status_code == 202
    assert second.json()["task_id"] != first.json()["task_id"]
    assert [c.user_id for c in gateway.published.submits] == ["alice", "bob"]


def test_idempotency_key_reused_with_other_config_is_422_naming_the_header(gateway, make_token):
    headers = {**auth(make_token("alice")), "Idempotency-Key": "k"}
    gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)

    response = gateway.client.post(
        "/backtest/submit", json={**CONFIG, "params": {"fast": 5, "slow": 30}}, headers=headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert len(gateway.published.submits) == 1
    assert len(gateway.store.records) == 1


def test_validation_error_names_the_offending_field(gateway, make_token):
    response = gateway.client.post(
        "/backtest/submit", json={**CONFIG, "interval": "7m"}, headers=auth(make_token())
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == "interval"
    assert "interval must be one of" in error["message"]
    assert "was '7m'" in error["message"]
    assert gateway.published.submits == []


def test_unknown_config_field_is_rejected_by_name(gateway, make_token):
    response = gateway.client.post(
        "/backtest/submit", json={**CONFIG, "leverage": 5}, headers=auth(make_token())
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "leverage"


def test_malformed_task_id_is_422_naming_task_id(gateway, make_token):
    response = gateway.client.get("/backtest/status/not-a-task", headers=auth(make_token()))

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": response.json()["error"]["message"],
        "field": "task_id",
    }


def test_unknown_route_uses_the_error_shape(gateway):
    response = gateway.client.get("/nope")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found", "field": None}}


def test_viewer_may_not_submit(gateway, make_token):
    response = gateway.client.post("/backtest/submit", json=CONFIG, headers=auth(make_token("val", "viewer")))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert gateway.published.submits == []


def _stored(store, user: str, state: TaskState = TaskState.PENDING, minutes: int = 0, **extra) -> str:
    task_id = f"{len(store.records):032x}"
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    store.put(TaskRecord(task_id=task_id, user_id=user, state=state, seq=1, created_at=created, **extra))
    return task_id


def test_foreign_task_is_404_on_status_results_and_cancel(gateway, make_token):
    bobs = _stored(gateway.store, "bob", TaskState.PROGRESS)
    headers = auth(make_token("alice"))

    for method, path in (("get", "status"), ("get", "results"), ("post", "cancel")):
        response = getattr(gateway.client, method)(f"/backtest/{path}/{bobs}", headers=headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "task_not_found"
        assert "bob" not in response.text
    assert gateway.published.cancels == []


def test_admin_sees_and_cancels_any_task(gateway, make_token):
    bobs = _stored(gateway.store, "bob", TaskState.PROGRESS)
    headers = auth(make_token("root", "admin"))

    assert gateway.client.get(f"/backtest/status/{bobs}", headers=headers).json()["user_id"] == "bob"
    response = gateway.client.post(f"/backtest/cancel/{bobs}", headers=headers)

    assert response.status_code == 202
    assert response.json() == {"task_id": bobs, "state": "PROGRESS", "cancel_requested": True}
    assert [(c.task_id, c.user_id) for c in gateway.published.cancels] == [(bobs, "root")]


def test_cancel_of_finished_task_is_409(gateway, make_token):
    done = _stored(gateway.store, "alice", TaskState.SUCCESS)

    response = gateway.client.post(f"/backtest/cancel/{done}", headers=auth(make_token("alice")))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_finished"
    assert gateway.published.cancels == []


def test_viewer_reads_own_task_but_may_not_cancel_it(gateway, make_token):
    own = _stored(gateway.store, "val", TaskState.PROGRESS, progress=0.25)
    headers = auth(make_token("val", "viewer"))

    assert gateway.client.get(f"/backtest/status/{own}", headers=headers).json()["progress"] == 0.25
    assert gateway.client.post(f"/backtest/cancel/{own}", headers=headers).status_code == 403


def test_results_before_success_is_409_and_failure_names_reason(gateway, make_token):
    running = _stored(gateway.store, "alice", TaskState.PROGRESS)
    failed = _stored(
        gateway.store,
        "alice",
        TaskState.FAILURE,
        failure=Failure(reason=FailureReason.TIMEOUT, message="ran past 60 s"),
    )
    headers = auth(make_token("alice"))

    not_yet = gateway.client.get(f"/backtest/results/{running}", headers=headers)
    no_result = gateway.client.get(f"/backtest/results/{failed}", headers=headers)

    assert (not_yet.status_code, not_yet.json()["error"]["code"]) == (409, "not_finished")
    assert (no_result.status_code, no_result.json()["error"]["code"]) == (409, "no_result")
    assert "timeout: ran past 60 s" in no_result.json()["error"]["message"]


def test_list_shows_only_own_tasks_newest_first_with_pages(gateway, make_token):
    mine = [_stored(gateway.store, "alice", minutes=m) for m in range(5)]
    _stored(gateway.store, "bob", minutes=10)
    headers = auth(make_token("alice"))

    first = gateway.client.get("/backtest/list?limit=2", headers=headers).json()
    last = gateway.client.get("/backtest/list?limit=2&offset=4", headers=headers).json()

    assert [i["task_id"] for i in first["items"]] == [mine[4], mine[3]]
    assert (first["total"], first["next_offset"]) == (5, 2)
    assert [i["task_id"] for i in last["items"]] == [mine[0]]
    assert last["next_offset"] is None


def test_list_filters_by_strategy_name_and_symbol_in_rest_and_graphql_alike(gateway, make_token):
    def run(strategy: object, symbols: list[str], **extra: object) -> str:
        config = BacktestConfig.model_validate({"strategy": strategy, "symbols": symbols})
        return _stored(
            gateway.store,
            "alice",
            TaskState.SUCCESS,
            minutes=len(gateway.store.records),
            config=config,
            **extra,
        )

    sma = run("sma_cross", ["BTCUSD"])
    both = run({"builtin": "sma_cross"}, ["ETHUSD", "BTCUSD"])
    uploaded = run(
        {"source": "class S: ...", "name": "breakout", "version": 1},
        ["ETHUSD"],
        strategy_ref=StrategyRef(owner="alice", name="breakout", version=1),
    )
    _stored(
        gateway.store,
        "bob",
        TaskState.SUCCESS,
        config=BacktestConfig(strategy="sma_cross", symbols=["BTCUSD"]),
    )
    headers = auth(make_token("alice"))

    def listed(query: str) -> list[str]:
        page = gateway.client.get(f"/backtest/list?{query}", headers=headers).json()
        return [item["task_id"] for item in page["items"]]

    def queried(args: str) -> list[str]:
        body = {"query": f"{{ backtests({args}) {{ items {{ taskId }} total }} }}"}
        data = gateway.client.post("/graphql", json=body, headers=headers).json()["data"]
        return [item["taskId"] for item in data["backtests"]["items"]]

    assert listed("strategy=sma_cross") == [both, sma] == queried('strategy: "sma_cross"')
    assert listed("strategy=breakout") == [uploaded] == queried('strategy: "breakout"')
    assert listed("symbol=ETHUSD") == [uploaded, both] == queried('symbol: "ETHUSD"')
    assert listed("symbol=ETHUSD&strategy=sma_cross&state=SUCCESS") == [both]
    assert listed("symbol=LTCUSD") == []


def test_user_id_filter_is_ignored_for_non_admins(gateway, make_token):
    _stored(gateway.store, "bob")
    mine = _stored(gateway.store, "alice")

    page = gateway.client.get("/backtest/list?user_id=bob", headers=auth(make_token("alice"))).json()
    admin_page = gateway.client.get(
        "/backtest/list?user_id=bob", headers=auth(make_token("r", "admin"))
    ).json()

    assert [i["task_id"] for i in page["items"]] == [mine]
    assert [i["user_id"] for i in admin_page["items"]] == ["bob"]


def test_unacknowledged_publish_is_503_and_leaves_no_record_or_key(gateway, make_token):
    from gateway_fakes import RecordingCommandBus

    bus = RecordingCommandBus()
    bus.fail = TimeoutError("no PubAck within 5 s")
    gateway.app.state.bus = bus
    headers = {**auth(make_token("alice")), "Idempotency-Key": "k"}

    response = gateway.client.post("/backtest/submit", json=CONFIG, headers=headers)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"
    assert "no PubAck within 5 s" in response.json()["error"]["message"]
    assert gateway.store.records == {}
    assert gateway.store.keys == {}


@pytest.mark.parametrize(
    ("strategy", "params", "field", "message"),
    [
        ("no_such_strategy", {}, "strategy", "unknown built-in strategy 'no_such_strategy'; built-ins are ["),
        (
            {"builtin": "sma_cross"},
            {"fast": 30, "slow": 10},
            "params",
            "fast must be < slow, was fast=30, slow=10",
        ),
        ("sma_cross", {"speed": 3}, "params", "accepts params ['fast', 'slow'], got unknown ['speed']"),
        (
            {"source": "class Broken(BaseStrategy)\n    pass\n", "class": "Broken"},
            {},
            "source",
            "syntax error in strategy source at line 1",
        ),
        ({"source": "x = 1\n"}, {}, "source", "strategy source must define exactly one top-level class"),
    ],
    ids=["unknown_builtin", "bad_params", "unknown_param", "syntax_error", "no_strategy_class"],
)
def test_strategy_the_sandbox_would_refuse_is_422_at_submit_and_nothing_is_queued(
    gateway, make_token, strategy, params, field, message
):
    body = {**CONFIG, "strategy": strategy, "params": params}

    response = gateway.client.post("/backtest/submit", json=body, headers=auth(make_token("alice")))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "strategy_rejected"
    assert error["field"] == field
    assert message in error["message"]
    assert gateway.published.submits == []


def test_status_names_the_progress_fraction_and_stage_as_the_stream_does(gateway, make_token):
    running = _stored(gateway.store, "alice", TaskState.PROGRESS, progress=0.6375, stage="signals")

    body = gateway.client.get(f"/backtest/status/{running}", headers=auth(make_token("alice"))).json()

    # The stream's PROGRESS event carries `fraction` and `stage`; `progress` stays for older clients.
    assert (body["fraction"], body["stage"], body["progress"]) == (0.6375, "signals", 0.6375)
