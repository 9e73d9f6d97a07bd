"""WS /walkforward/stream: the status first, each fold's chosen params and out-of-sample metrics once as
the store shows them, the final status last; owner only (4404 otherwise, as the sweep stream)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from backtest_core.contracts import SweepCounts, SweepState
from backtest_research.sweep_records import SweepRecord
from backtest_research.walkforward_records import FoldRecord, WalkForwardRecord
from gateway_testdata import MemoryWalkForwards, finished_walkforward, running_walkforward, trained_fold
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.service

W = "3f" * 16


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"sweep_stream_poll_s": 0.02})


@pytest.fixture
def walkforwards(gateway) -> MemoryWalkForwards:
    store = MemoryWalkForwards()
    gateway.app.state.walkforwards = store
    return store


def _receive_until(ws, kind: str) -> list[dict]:
    """Frames up to and including the next one of type `kind`."""
    frames = [ws.receive_json()]
    while frames[-1].get("type") != kind:
        frames.append(ws.receive_json())
    return frames


def _receive_all(ws) -> tuple[list[dict], int]:
    frames = []
    while True:
        try:
            frames.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return frames, closed.code


def _fold_sweep(record: WalkForwardRecord, fold: int, counts: SweepCounts, ended: bool) -> SweepRecord:
    moment = record.created_at + timedelta(minutes=fold)
    return SweepRecord(
        sweep_id=record.folds[fold].sweep_id,
        user_id=record.user_id,
        state=SweepState.SUCCESS if ended else SweepState.RUNNING,
        config=record.config,
        search=record.search,
        walkforward_id=record.walkforward_id,
        counts=counts,
        created_at=moment,
        updated_at=moment,
        finished_at=moment if ended else None,
    )


def _stages(final: WalkForwardRecord) -> tuple[WalkForwardRecord, WalkForwardRecord]:
    """The walk-forward on its way to `final`: fold 0 trained (testing), then fold 0 done and fold 1
    trained; each later stage updated a minute after the one before."""
    base = running_walkforward(final.walkforward_id, final.user_id)
    start = base.updated_at

    def trained(k: int, fast: int) -> FoldRecord:
        return trained_fold(base.folds[k], fast, final.folds[k].cash or 0.0)

    first = [trained(0, 5), base.folds[1], base.folds[2]]
    second = [final.folds[0], trained(1, 10), base.folds[2]]
    return (
        base.model_copy(update={"folds": first, "updated_at": start + timedelta(minutes=1)}),
        base.model_copy(update={"folds": second, "updated_at": start + timedelta(minutes=2)}),
    )


def test_the_status_comes_first_then_each_fold_once_as_it_trains_and_tests_and_the_final_status_last(
    gateway, make_token, walkforwards
):
    final = finished_walkforward(W, "alice")
    first, second = _stages(final)
    walkforwards.records[W] = first
    gateway.sweeps.records[first.folds[0].sweep_id] = _fold_sweep(
        first, 0, SweepCounts(total=4, done=3, skipped=1), ended=True
    )
    gateway.sweeps.records[first.folds[1].sweep_id] = _fold_sweep(
        first, 1, SweepCounts(total=4, done=2, running=2), ended=False
    )  # fold 2's sweep is not stored yet: its 4 trials are all to come
    headers = {"Authorization": f"Bearer {make_token('alice')}"}

    with gateway.client.websocket_connect(f"/walkforward/stream/{W}", headers=headers) as ws:
        snapshot = _receive_until(ws, "fold_trained")
        gateway.sweeps.records[first.folds[1].sweep_id] = _fold_sweep(
            first, 1, SweepCounts(total=4, done=4), ended=True
        )
        trials = _receive_until(ws, "status")
        walkforwards.records[W] = second
        progress = _receive_until(ws, "status")
        walkforwards.records[W] = final
        rest, code = _receive_all(ws)

    assert [f["type"] for f in snapshot] == ["status", "fold_trained"]
    status = snapshot[0]
    assert (status["walkforward"]["state"], status["walkforward"]["counts"]) == (
        "RUNNING",
        {"total": 3, "done": 0},
    )
    # 3 + 2 done of 4 + 4 + 4 trials; fold 0 skipped 1, fold 1 runs 2
    assert status["trials"] == {
        "total": 12,
        "done": 5,
        "failed": 0,
        "skipped": 1,
        "cancelled": 0,
        "running": 2,
    }
    assert snapshot[1]["fold"] == {
        "fold": 0,
        **final.result["folds"][0],
        "out_of_sample": None,
        "trades": 0,
    }
    # fold 1's sweep ended 4 of 4: a status on its own, 3 + 4 done
    assert [f["type"] for f in trials] == ["status"] and trials[0]["trials"]["done"] == 7
    assert [(f["type"], f.get("fold", {}).get("fold")) for f in progress] == [
        ("fold_tested", 0),
        ("fold_trained", 1),
        ("status", None),
    ]
    assert progress[0]["fold"] == {"fold": 0, **final.result["folds"][0]}
    assert progress[1]["fold"]["params"] == {"fast": 10, "slow": 50}
    assert progress[2]["walkforward"]["counts"]["done"] == 1
    assert [(f["type"], f.get("fold", {}).get("fold")) for f in rest] == [
        ("fold_tested", 1),
        ("fold_trained", 2),
        ("fold_tested", 2),
        ("status", None),
    ]
    assert [f["fold"] for f in rest[::2][:2]] == [{"fold": k, **final.result["folds"][k]} for k in (1, 2)]
    last = rest[-1]["walkforward"]
    assert (last["state"], last["counts"], last["finished_at"]) == (
        "SUCCESS",
        {"total": 3, "done": 3},
        "2017-01-01T01:00:00Z",
    )
    assert code == 1000


def test_a_finished_walk_forward_streams_its_folds_between_two_final_statuses(
    gateway, make_token, walkforwards
):
    final = finished_walkforward(W, "alice")
    walkforwards.records[W] = final

    with gateway.client.websocket_connect(f"/walkforward/stream/{W}?token={make_token('alice')}") as ws:
        frames, code = _receive_all(ws)

    assert [(f["type"], f.get("fold", {}).get("fold")) for f in frames] == [
        ("status", None),
        *[(kind, k) for k in range(3) for kind in ("fold_trained", "fold_tested")],
        ("status", None),
    ]
    assert frames[0] == frames[-1] and frames[-1]["walkforward"]["state"] == "SUCCESS"
    assert [f["fold"]["params"] for f in frames[2:-1:2]] == [f["params"] for f in final.result["folds"]]
    assert code == 1000


@pytest.mark.parametrize(
    ("owner", "walkforward_id"), [("bob", W), ("alice", "4e" * 16), ("alice", "not-an-id")]
)
def test_a_foreign_unknown_or_malformed_id_gets_one_error_frame_and_close_4404(
    gateway, make_token, walkforwards, owner, walkforward_id
):
    walkforwards.records[W] = finished_walkforward(W, owner)

    with gateway.client.websocket_connect(
        f"/walkforward/stream/{walkforward_id}?token={make_token('alice')}"
    ) as ws:
        frames, code = _receive_all(ws)

    assert frames == [
        {
            "error": {
                "code": "walkforward_not_found",
                "message": f"no walk-forward with id {walkforward_id!r}",
                "field": "walkforward_id",
            }
        }
    ]
    assert code == 4404


def test_a_stream_without_a_token_closes_4401(gateway, walkforwards):
    walkforwards.records[W] = finished_walkforward(W, "alice")

    with gateway.client.websocket_connect(f"/walkforward/stream/{W}") as ws:
        frames, code = _receive_all(ws)

    assert frames[0]["error"]["code"] == "unauthorized" and code == 4401
