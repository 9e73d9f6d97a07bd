"""SweeperService over fakes: trials go out up to the in-flight limit, ends are recorded once, a cancel ends
every trial, and a restart resends what a crash left between marking a trial and sending it."""

from __future__ import annotations

from backtest_core.contracts import (
    BacktestCancelled,
    BacktestFailed,
    BacktestSucceeded,
    CancelSweep,
    Failure,
    FailureReason,
    SubmitSweep,
    SweepState,
)
from backtest_research.sweep_records import TrialRecord, TrialStatus
from backtest_sweeper.plan import trial_config
from backtest_sweeper.service import SweeperService
from backtest_testinfra import make_backtest_result, make_metrics

from ..conftest import FakeSweepBus, FakeSweepStore, make_sweep


async def _submitted(service: SweeperService, store: FakeSweepStore, **search: object) -> str:
    record = make_sweep(**search)
    store.sweeps[record.sweep_id] = record
    await service.submit(SubmitSweep(sweep_id=record.sweep_id, user_id=record.user_id))
    return record.sweep_id


def _trial(store: FakeSweepStore, sweep_id: str, trial: int) -> TrialRecord:
    return store.trial_rows[(sweep_id, trial)]


def _succeeded(store: FakeSweepStore, trial: TrialRecord, sharpe: float) -> BacktestSucceeded:
    config = trial_config(store.sweeps[trial.sweep_id].config, trial.params)
    result = make_backtest_result(config, make_metrics(sharpe=sharpe, trade_count=3))
    return BacktestSucceeded(task_id=trial.task_id, user_id=trial.user_id, seq=4, result=result)


def _failed(trial: TrialRecord, reason: FailureReason, message: str) -> BacktestFailed:
    failure = Failure(reason=reason, message=message)
    return BacktestFailed(task_id=trial.task_id, user_id=trial.user_id, seq=4, failure=failure)


async def test_a_grid_sends_its_trials_two_at_a_time_each_once_under_the_trials_own_message_id(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    first = [(c.task_id, c.message_id, c.config.params) for c in bus.submitted]

    trial_0, trial_1 = _trial(store, sweep_id, 0), _trial(store, sweep_id, 1)
    assert first == [
        (trial_0.task_id, f"{trial_0.task_id}-submit", {"fast": 5, "slow": 20}),
        (trial_1.task_id, f"{trial_1.task_id}-submit", {"fast": 5, "slow": 30}),
    ]
    assert store.sweeps[sweep_id].state is SweepState.RUNNING
    assert store.sweeps[sweep_id].counts.model_dump() == {
        "total": 6, "done": 0, "failed": 0, "skipped": 0, "cancelled": 0, "running": 2
    }  # fmt: skip

    await service.trial_ended(trial_0.task_id, _succeeded(store, trial_0, 1.5))
    await service.trial_ended(trial_0.task_id, _succeeded(store, trial_0, 9.0))  # redelivered: ignored

    assert [c.config.params for c in bus.submitted[2:]] == [{"fast": 5, "slow": 40}]
    assert _trial(store, sweep_id, 0).metrics is not None
    assert _trial(store, sweep_id, 0).score == 1.5
    assert store.sweeps[sweep_id].best is not None and store.sweeps[sweep_id].best["id"] == 0


async def test_the_sweep_ends_when_every_trial_has_ended_ranked_by_its_objective(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    store.earlier_sharpes = [0.01, 0.02]
    sweep_id = await _submitted(service, store)
    sharpes = {0: 0.5, 1: 2.0, 2: -1.0, 3: 2.0, 4: 0.1}
    while bus.submitted:
        command = bus.submitted.pop(0)
        trial = next(t for t in store.trial_rows.values() if t.task_id == command.task_id)
        if trial.id == 5:
            await service.trial_ended(trial.task_id, _failed(trial, FailureReason.TIMEOUT, "over 600 s"))
        else:
            await service.trial_ended(trial.task_id, _succeeded(store, trial, sharpes[trial.id]))

    record = store.sweeps[sweep_id]
    assert record.state is SweepState.SUCCESS and record.finished_at is not None
    assert record.best is not None and record.best["id"] == 1  # 2.0 twice: the lower id
    assert record.counts.model_dump() == {
        "total": 6, "done": 5, "failed": 1, "skipped": 0, "cancelled": 0, "running": 0
    }  # fmt: skip
    assert _trial(store, sweep_id, 5).reason == "timeout: over 600 s"
    assert bus.events[-1].state is SweepState.SUCCESS and bus.events[-1].best_trial == 1
    assert record.overfitting is not None and record.overfitting["history_trials"] == 5 + 2


async def test_params_a_builtin_refuses_are_skipped_without_a_backtest_and_a_refusal_in_the_sandbox_too(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store, space=["fast=10,30", "slow=20"])
    sent = [c.config.params for c in bus.submitted]
    trial_0 = _trial(store, sweep_id, 0)
    await service.trial_ended(
        trial_0.task_id, _failed(trial_0, FailureReason.INVALID_CONFIG, "slow: too small")
    )

    record = store.sweeps[sweep_id]
    assert sent == [{"fast": 10, "slow": 20}]
    assert _trial(store, sweep_id, 1).state is TrialStatus.SKIPPED
    assert "fast must be < slow" in (_trial(store, sweep_id, 1).reason or "")
    assert (_trial(store, sweep_id, 0).state, _trial(store, sweep_id, 0).reason) == (
        TrialStatus.SKIPPED,
        "slow: too small",
    )
    assert (
        record.state is SweepState.FAILURE
        and record.failure == "no trial succeeded; the first said: slow: too small"
    )


async def test_a_cancel_ends_planned_trials_at_once_cancels_those_out_and_finishes_when_they_end(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    await service.cancel(CancelSweep(sweep_id=sweep_id, user_id="alice"))
    cancelling = store.sweeps[sweep_id]
    for command in bus.cancelled:
        trial = next(t for t in store.trial_rows.values() if t.task_id == command.task_id)
        await service.trial_ended(
            trial.task_id, BacktestCancelled(task_id=trial.task_id, user_id="alice", seq=3)
        )

    record = store.sweeps[sweep_id]
    assert [c.task_id for c in bus.cancelled] == [_trial(store, sweep_id, i).task_id for i in (0, 1)]
    assert (cancelling.state, cancelling.finished_at, cancelling.counts.running) == (
        SweepState.CANCELLED,
        None,
        2,
    )
    assert len(bus.submitted) == 2  # nothing sent after the cancel
    assert record.state is SweepState.CANCELLED and record.finished_at is not None
    assert record.counts.model_dump() == {
        "total": 6, "done": 0, "failed": 0, "skipped": 0, "cancelled": 6, "running": 0
    }  # fmt: skip


async def test_a_cancel_of_another_users_sweep_or_an_ended_one_changes_nothing(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    await service.cancel(CancelSweep(sweep_id=sweep_id, user_id="mallory"))

    assert store.sweeps[sweep_id].state is SweepState.RUNNING and bus.cancelled == []


async def test_a_restart_resends_trials_marked_submitted_under_the_same_message_id(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    before = [(c.task_id, c.message_id) for c in bus.submitted]
    restarted_bus = FakeSweepBus()
    restarted = SweeperService(
        store, restarted_bus, lambda: store.sweeps[sweep_id].updated_at, trials_in_flight=2
    )

    assert await restarted.resume() == 1
    assert [(c.task_id, c.message_id) for c in restarted_bus.submitted] == before
    assert store.sweeps[sweep_id].counts.running == 2


async def test_a_tpe_sweep_asks_its_trials_as_earlier_ones_end_and_stops_at_its_trial_count(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(
        service, store, space=["fast=2:10:1", "slow=20:60:5"], method="tpe", trials=5, seed=3
    )
    while bus.submitted:
        command = bus.submitted.pop(0)
        trial = next(t for t in store.trial_rows.values() if t.task_id == command.task_id)
        await service.trial_ended(trial.task_id, _succeeded(store, trial, float(trial.params["slow"])))

    record = store.sweeps[sweep_id]
    assert sorted(i for s, i in store.trial_rows if s == sweep_id) == [0, 1, 2, 3, 4]
    assert record.state is SweepState.SUCCESS and record.counts.done == 5
