"""WalkForwardService over fakes: the folds' sweeps start at once, the test runs go in fold order with the
equity carried, a fold without an eligible trial is skipped, the result is the stitched walk-forward, a
restart resends what a crash left, a cancel ends it, a downsampled curve fails the fold."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from backtest_core.contracts import (
    BacktestCancelled,
    BacktestSucceeded,
    CancelSweep,
    CancelWalkForward,
    SubmitWalkForward,
    SweepState,
)
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_core.model.results import EquityPoint
from backtest_research.search import SweepSearch
from backtest_research.walkforward_records import FoldState, WalkForwardRecord, walkforward_folds
from backtest_sweeper.walkforward_service import WalkForwardService
from backtest_testinfra import make_backtest_result, make_metrics

from ..conftest import T0, FakeSweepStoreWithFolds, FakeWalkForwardBus, FakeWalkForwardStore

DAY_NS = 86_400 * 1_000_000_000
TIMES = np.array([int(T0.timestamp()) * 1_000_000_000 + k * DAY_NS for k in range(10)], dtype=np.int64)
WF_ID = "a" * 32


@pytest.fixture
def sweeps() -> FakeSweepStoreWithFolds:
    return FakeSweepStoreWithFolds()


@pytest.fixture
def records() -> FakeWalkForwardStore:
    return FakeWalkForwardStore()


@pytest.fixture
def bus() -> FakeWalkForwardBus:
    return FakeWalkForwardBus()


@pytest.fixture
def service(
    records: FakeWalkForwardStore, sweeps: FakeSweepStoreWithFolds, bus: FakeWalkForwardBus
) -> WalkForwardService:
    return WalkForwardService(records, sweeps, bus, lambda: T0)


async def _submitted(service: WalkForwardService, records: FakeWalkForwardStore) -> WalkForwardRecord:
    """Rolling over 10 daily bars, train 4, test 2: folds [0,4)+[4,6), [2,6)+[6,8), [4,8)+[8,10)."""
    config = BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSDT"], "cash": 1000.0})
    options, folds = walkforward_folds(WF_ID, TIMES, "1d", 4, 2)
    records.records[WF_ID] = WalkForwardRecord(
        walkforward_id=WF_ID,
        user_id="alice",
        state=SweepState.PENDING,
        config=config,
        search=SweepSearch.model_validate({"space": ["fast=2,3", "slow=4"]}),
        options=options,
        folds=folds,
        created_at=T0,
        updated_at=T0,
    )
    await service.submit(SubmitWalkForward(walkforward_id=WF_ID, user_id="alice"))
    return records.records[WF_ID]


async def _sweep_ends(
    service: WalkForwardService, sweeps: FakeSweepStoreWithFolds, sweep_id: str, best: dict[str, Any] | None
) -> None:
    state = SweepState.SUCCESS if best is not None else SweepState.FAILURE
    sweeps.sweeps[sweep_id] = sweeps.sweeps[sweep_id].model_copy(update={"state": state, "best": best})
    await service.sweep_ended(sweep_id)


def _best(fast: int, cagr: float) -> dict[str, Any]:
    return {"id": 0, "params": {"fast": fast, "slow": 4}, "metrics": {"cagr_pct": cagr, "sharpe": 1.0}}


def _test_run(task_id: str, first_bar: int, equity: list[float], trades: int = 2) -> BacktestSucceeded:
    config = BacktestConfig.model_validate({"strategy": "sma_cross", "symbols": ["BTCUSDT"]})
    points = [EquityPoint(time=T0 + timedelta(days=first_bar + k), equity=e) for k, e in enumerate(equity)]
    result = make_backtest_result(config, make_metrics(trade_count=trades), equity_curve=points)
    return BacktestSucceeded(task_id=task_id, user_id="alice", seq=5, result=result)


async def test_the_folds_sweeps_start_at_once_over_their_train_windows_each_under_its_own_message_id(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    record = await _submitted(service, records)

    assert record.state is SweepState.RUNNING
    assert [c.message_id for c in bus.sweep_commands] == [f"{f.sweep_id}-submit" for f in record.folds]
    windows = [
        (sweeps.sweeps[f.sweep_id].config.start, sweeps.sweeps[f.sweep_id].config.end) for f in record.folds
    ]
    assert windows == [(T0, T0 + timedelta(days=4)), (T0 + timedelta(days=2), T0 + timedelta(days=6)),
                       (T0 + timedelta(days=4), T0 + timedelta(days=8))]  # fmt: skip
    assert bus.submitted == []  # no test run before a fold's sweep has ended


async def test_test_runs_go_in_fold_order_with_the_equity_carried_and_the_result_is_stitched(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    folds = (await _submitted(service, records)).folds
    await _sweep_ends(service, sweeps, folds[1].sweep_id, _best(3, 30.0))
    assert bus.submitted == []  # fold 1 waits for fold 0's test run (its starting equity)

    await _sweep_ends(service, sweeps, folds[0].sweep_id, _best(2, 10.0))
    await _sweep_ends(service, sweeps, folds[2].sweep_id, None)  # no eligible trial: skipped
    first = bus.submitted[0]
    assert (first.task_id, first.message_id) == (folds[0].test_task_id, f"{folds[0].test_task_id}-submit")
    assert (first.config.start, first.config.end) == (
        T0,
        T0 + timedelta(days=6),
    )  # warm-up from the train start
    assert (first.config.cash, first.config.params) == (1000.0, {"fast": 2, "slow": 4})
    assert isinstance(first.config.strategy, SourceStrategy)
    assert f"TRADE_FROM_NS = {folds[0].test_start}" in first.config.strategy.source
    assert len(bus.submitted) == 1

    await service.test_ended(
        folds[0].test_task_id, _test_run(folds[0].test_task_id, 0, [1000.0] * 4 + [1100.0, 1210.0])
    )
    await service.test_ended(
        folds[0].test_task_id, _test_run(folds[0].test_task_id, 0, [5.0] * 6)
    )  # again: ignored
    second = bus.submitted[1]
    assert (second.task_id, second.config.cash, second.config.params) == (
        folds[1].test_task_id,
        1210.0,
        {"fast": 3, "slow": 4},
    )

    await service.test_ended(
        folds[1].test_task_id, _test_run(folds[1].test_task_id, 2, [1210.0] * 5 + [1331.0], trades=1)
    )
    record = records.records[WF_ID]
    assert (record.state, record.finished_at) == (SweepState.SUCCESS, T0)
    assert [f.state for f in record.folds] == [FoldState.DONE, FoldState.DONE, FoldState.NO_TRIAL]
    result = record.result
    assert result is not None
    assert [f["out_of_sample"]["final_equity"] for f in result["folds"][:2]] == [1210.0, 1331.0]
    assert [f["out_of_sample"]["total_return_pct"] for f in result["folds"][:2]] == pytest.approx(
        [21.0, 10.0]
    )
    assert [f["trades"] for f in result["folds"]] == [2, 1, 0]
    assert result["folds"][2]["params"] is None and result["folds"][2]["out_of_sample"] is None
    assert [p["equity"] for p in result["oos"]["equity"]] == [1100.0, 1210.0, 1210.0, 1331.0]
    oos = result["oos"]["metrics"]
    assert (oos["start_equity"], oos["final_equity"], oos["bars"]) == (1000.0, 1331.0, 4)
    assert oos["total_return_pct"] == pytest.approx(33.1)
    assert result["efficiency"] == pytest.approx(oos["cagr_pct"] / 20.0)  # mean in-sample CAGR (10 + 30) / 2


async def test_a_restart_resends_the_test_run_a_crash_left_marked_testing(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    folds = (await _submitted(service, records)).folds
    await _sweep_ends(service, sweeps, folds[0].sweep_id, _best(2, 10.0))
    sent = bus.submitted[0]

    resent_bus = FakeWalkForwardBus()
    restarted = WalkForwardService(records, sweeps, resent_bus, lambda: T0)
    assert await restarted.resume() == 1
    assert [(c.task_id, c.message_id, c.config) for c in resent_bus.submitted] == [
        (sent.task_id, sent.message_id, sent.config)
    ]
    assert [c.message_id for c in resent_bus.sweep_commands] == [
        f"{f.sweep_id}-submit" for f in folds[1:]
    ]  # the sweeps still PENDING (fold 0's has ended)


async def test_a_cancel_cancels_the_open_sweeps_and_ends_cancelled_once_they_have_ended(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    folds = (await _submitted(service, records)).folds
    await service.cancel(CancelWalkForward(walkforward_id=WF_ID, user_id="alice"))
    cancels = [c for c in bus.sweep_commands if isinstance(c, CancelSweep)]
    assert [c.sweep_id for c in cancels] == [f.sweep_id for f in folds]
    assert records.records[WF_ID].finished_at is None  # the sweeps have not ended yet

    for fold in folds:
        sweeps.sweeps[fold.sweep_id] = sweeps.sweeps[fold.sweep_id].model_copy(
            update={"state": SweepState.CANCELLED}
        )
        await service.sweep_ended(fold.sweep_id)
    record = records.records[WF_ID]
    assert (record.state, record.finished_at, record.result) == (SweepState.CANCELLED, T0, None)
    assert bus.submitted == []


async def test_a_downsampled_test_curve_fails_the_fold_and_the_walk_forward_naming_the_limit(
    service: WalkForwardService, records: FakeWalkForwardStore, sweeps: FakeSweepStoreWithFolds
) -> None:
    folds = (await _submitted(service, records)).folds
    for fold in folds:
        await _sweep_ends(service, sweeps, fold.sweep_id, _best(2, 10.0))
    await service.test_ended(
        folds[0].test_task_id, _test_run(folds[0].test_task_id, 0, [1000.0, 1000.0, 1100.0])
    )

    record = records.records[WF_ID]
    assert record.state is SweepState.FAILURE and record.finished_at == T0
    assert [f.state for f in record.folds] == [FoldState.FAILED, FoldState.CANCELLED, FoldState.CANCELLED]
    assert record.failure is not None and "RUNNER_EQUITY_POINTS_MAX" in record.failure


async def test_a_test_run_cancelled_on_its_own_ends_the_walk_forward_failed_naming_the_fold(
    service: WalkForwardService, records: FakeWalkForwardStore, sweeps: FakeSweepStoreWithFolds
) -> None:
    folds = (await _submitted(service, records)).folds
    for fold in folds:
        await _sweep_ends(service, sweeps, fold.sweep_id, _best(2, 10.0))
    task = folds[0].test_task_id
    await service.test_ended(task, BacktestCancelled(task_id=task, user_id="alice", seq=3))

    record = records.records[WF_ID]
    assert (record.state, record.finished_at) == (SweepState.FAILURE, T0)
    assert [f.state for f in record.folds] == [FoldState.CANCELLED] * 3
    assert record.failure == "fold 0: its sweep or test run was cancelled"


async def test_each_stored_change_publishes_its_milestones_once_each_under_an_id_of_its_own(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    folds = (await _submitted(service, records)).folds
    await _sweep_ends(service, sweeps, folds[0].sweep_id, _best(2, 10.0))
    await _sweep_ends(service, sweeps, folds[0].sweep_id, _best(2, 10.0))  # redelivered: nothing new
    await _sweep_ends(service, sweeps, folds[2].sweep_id, None)  # no eligible trial
    first = _test_run(folds[0].test_task_id, 0, [1000.0] * 4 + [1100.0, 1210.0])
    await service.test_ended(folds[0].test_task_id, first)
    await _sweep_ends(service, sweeps, folds[1].sweep_id, _best(3, 30.0))
    last = _test_run(folds[1].test_task_id, 2, [1210.0] * 5 + [1331.0], trades=1)
    await service.test_ended(folds[1].test_task_id, last)
    await service.test_ended(folds[1].test_task_id, last)  # redelivered after the end: nothing

    events = {e.message_id.removeprefix(f"{WF_ID}-"): e for e in bus.walkforward_events}
    assert list(events) == ["RUNNING", "fold-0-trained", "fold-2-ended", "fold-0-ended", "fold-1-trained",
                            "fold-1-ended", "SUCCESS-finished"]  # fmt: skip
    assert len(bus.walkforward_events) == len(events)
    trained = events["fold-0-trained"]  # the first fold's test run goes at once
    assert (trained.fold, trained.fold_state, trained.params) == (0, "TESTING", {"fast": 2, "slow": 4})
    ended = events["fold-0-ended"]
    assert (ended.fold_state, ended.folds_done, ended.folds_total) == ("DONE", 2, 3)  # with fold 2
    assert ended.out_of_sample is not None and ended.out_of_sample["final_equity"] == 1210.0
    assert (events["fold-2-ended"].fold_state, events["fold-2-ended"].params) == ("NO_TRIAL", None)
    final = events["SUCCESS-finished"]
    assert (final.fold, final.state, final.finished, final.folds_done) == (None, SweepState.SUCCESS, True, 3)
    assert {e.occurred_at for e in bus.walkforward_events} == {T0}


async def test_a_cancel_publishes_the_cancelled_state_then_the_finish_once_the_sweeps_have_ended(
    service: WalkForwardService,
    records: FakeWalkForwardStore,
    sweeps: FakeSweepStoreWithFolds,
    bus: FakeWalkForwardBus,
) -> None:
    folds = (await _submitted(service, records)).folds
    await service.cancel(CancelWalkForward(walkforward_id=WF_ID, user_id="alice"))
    for fold in folds:
        sweeps.sweeps[fold.sweep_id] = sweeps.sweeps[fold.sweep_id].model_copy(
            update={"state": SweepState.CANCELLED}
        )
        await service.sweep_ended(fold.sweep_id)

    assert [e.message_id.removeprefix(f"{WF_ID}-") for e in bus.walkforward_events] == [
        "RUNNING",
        "CANCELLED",
        "fold-0-ended",
        "fold-1-ended",
        "fold-2-ended",
        "CANCELLED-finished",
    ]
    # the last fold's end and the finish are one stored change
    assert [e.finished for e in bus.walkforward_events] == [False] * 4 + [True, True]
