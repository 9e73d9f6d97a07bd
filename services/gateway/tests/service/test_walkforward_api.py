"""POST /walkforward/submit plans the folds over the stored bars as `backtest walkforward` does, stores the
walk-forward and queues it; bad folds are 422 naming the option; a foreign walk-forward is a 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from backtest_core.contracts import CancelWalkForward, SubmitWalkForward, SweepCounts, SweepState
from backtest_core.model.config import BacktestConfig
from backtest_research.search import SweepSearch
from backtest_research.sweep_records import SweepRecord
from backtest_research.walkforward import plan_folds
from backtest_testinfra import shipped_candles
from gateway_testdata import MemoryWalkForwards

pytestmark = pytest.mark.service

BODY: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "search": {"space": ["fast=5,10", "slow=20,50"]},
    "train": "365d",
    "test": 180,
}


class RecordingBus:
    """WalkForwardBus that keeps what was published."""

    def __init__(self) -> None:
        self.sent: list[SubmitWalkForward | CancelWalkForward] = []

    async def submit(self, command: SubmitWalkForward) -> None:
        self.sent.append(command)

    async def cancel(self, command: CancelWalkForward) -> None:
        self.sent.append(command)


@pytest.fixture
def walkforwards(gateway) -> MemoryWalkForwards:
    store = MemoryWalkForwards()
    gateway.app.state.walkforwards = store
    gateway.app.state.walkforward_bus = RecordingBus()
    gateway.market.series[("BTCUSD", "1d")] = shipped_candles("BTCUSD")
    return store


def _post(gateway, make_token, user: str = "alice", **changes: Any):
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    return gateway.client.post("/walkforward/submit", json={**BODY, **changes}, headers=headers)


def test_a_submission_plans_the_folds_of_backtest_walkforward_and_queues_them(
    gateway, make_token, walkforwards
):
    answer = _post(gateway, make_token)

    assert answer.status_code == 202, answer.text
    body = answer.json()
    bars = len(shipped_candles("BTCUSD"))
    expected = plan_folds(bars, 365, 180)
    assert body == {
        "walkforward_id": body["walkforward_id"],
        "state": "PENDING",
        "folds": len(expected),
        "status_url": f"/walkforward/{body['walkforward_id']}",
        "result_url": f"/walkforward/{body['walkforward_id']}/result",
    }
    record = walkforwards.records[body["walkforward_id"]]
    times = shipped_candles("BTCUSD").open_time
    assert [(f.train_start, f.test_start, f.test_bars) for f in record.folds] == [
        (int(times[f.train_start]), int(times[f.test_start]), 180) for f in expected
    ]
    assert record.options.bars == {"train": 365, "test": 180, "gap": 0, "step": 180}
    sent = gateway.app.state.walkforward_bus.sent
    assert [(c.walkforward_id, c.user_id) for c in sent] == [(body["walkforward_id"], "alice")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train": 100_000}, "no fold fits: train 100000 + gap 0 + test 180 bars > the data's"),
        ({"train": "3 months"}, "option train: a count of bars or a duration like 90d, was '3 months'"),
        ({"test": 0}, "option test: at least one bar, was '0'"),
        (
            {"search": {"space": ["fast=5,10"], "method": "tpe", "trials": 4}},
            "walk-forward takes grid or random",
        ),
    ],
)
def test_folds_that_do_not_read_or_fit_are_422_naming_why(
    gateway, make_token, walkforwards, changes, message
):
    answer = _post(gateway, make_token, **changes)

    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]["message"]
    assert answer.json()["error"]["field"] == ("search" if "search" in changes else next(iter(changes)))
    assert walkforwards.records == {}


def test_another_users_walk_forward_is_404_everywhere_and_unlisted(gateway, make_token, walkforwards):
    walkforward_id = _post(gateway, make_token).json()["walkforward_id"]
    bob = {"Authorization": f"Bearer {make_token('bob')}"}
    alice = {"Authorization": f"Bearer {make_token('alice')}"}

    answers = [
        gateway.client.get(f"/walkforward/{walkforward_id}{tail}", headers=bob) for tail in ("", "/result")
    ]
    cancel = gateway.client.post(f"/walkforward/{walkforward_id}/cancel", headers=bob)

    assert [a.status_code for a in answers] == [404, 404] and cancel.status_code == 404
    assert answers[0].json()["error"]["code"] == "walkforward_not_found"
    assert gateway.client.get("/walkforward/list", headers=bob).json()["total"] == 0
    own = gateway.client.get(f"/walkforward/{walkforward_id}", headers=alice).json()
    folds = len(plan_folds(len(shipped_candles("BTCUSD")), 365, 180))
    assert (own["state"], own["counts"]) == ("PENDING", {"total": folds, "done": 0})
    assert gateway.client.get(f"/walkforward/{walkforward_id}/result", headers=alice).status_code == 409


def test_a_walk_forwards_fold_sweeps_do_not_count_as_the_users_open_sweeps(gateway, make_token, walkforwards):
    config = BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSD"]})
    search = SweepSearch.model_validate(BODY["search"])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for fold in range(gateway.app.state.settings.sweeps_open_per_user):
        gateway.sweeps.records[f"{fold:032x}"] = SweepRecord(
            sweep_id=f"{fold:032x}", user_id="alice", state=SweepState.RUNNING, config=config, search=search,
            walkforward_id="a" * 32, counts=SweepCounts(total=4), created_at=now, updated_at=now,
        )  # fmt: skip
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    sweep = {k: BODY[k] for k in ("strategy", "symbols", "interval", "search")}

    answer = gateway.client.post("/sweep/submit", json=sweep, headers=headers)

    assert answer.status_code == 202, answer.text


def test_test_windows_beyond_what_the_walk_forward_can_store_are_422(gateway, make_token, walkforwards):
    # 1-bar folds over the shipped daily bars: about 1,800 test bars in all, over a cap of 1,000
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("backtest_gateway.routers.walkforward.STITCHED_BARS_MAX", 1000)
        answer = _post(gateway, make_token, train=1, test=1)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"].startswith("the folds' test windows hold ")
    assert walkforwards.records == {}
