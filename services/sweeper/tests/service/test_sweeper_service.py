"""SweeperService over fakes: trials go out in chunks (one task each) up to the in-flight limit, a chunk's
end is recorded once in each of its trials, a cancel ends every trial, and a restart resends what a crash
left between marking a chunk and sending it."""

from __future__ import annotations

import numpy as np
from backtest_core.contracts import (
    BacktestCancelled,
    BacktestFailed,
    BacktestSucceeded,
    CancelSweep,
    Failure,
    FailureReason,
    SubmitBacktest,
    SubmitSweep,
    SweepState,
)
from backtest_core.contracts.cache_key import config_fingerprints
from backtest_core.model.results import TrialOutcome, TrialsResult, pack_returns, unpack_returns
from backtest_research.sweep_records import TrialRecord, TrialStatus, chunk_task_id
from backtest_sweeper.plan import Chunking, trial_cache_key
from backtest_sweeper.ports import Reused
from backtest_sweeper.service import SweeperService
from backtest_testinfra import make_metrics

from ..conftest import T0, FakeFingerprints, FakeSweepBus, FakeSweepStore, make_sweep

RETURNS = np.array([0.01, -0.02, 0.005])


async def _submitted(
    service: SweeperService, store: FakeSweepStore, sweep_id: str = "5" * 32, **search: object
) -> str:
    record = make_sweep(sweep_id, **search)
    store.sweeps[record.sweep_id] = record
    await service.submit(SubmitSweep(sweep_id=record.sweep_id, user_id=record.user_id))
    return record.sweep_id


def _trial(store: FakeSweepStore, sweep_id: str, trial: int) -> TrialRecord:
    return store.trial_rows[(sweep_id, trial)]


def _succeeded(
    command: SubmitBacktest, sharpe: dict[int, float], failed: tuple[int, ...] = ()
) -> BacktestSucceeded:
    """The chunk's end: each trial SUCCESS with its Sharpe (as its metrics) but those in `failed`."""
    outcomes = [
        TrialOutcome(trial=t.trial, state="FAILURE", reason="strategy_error: boom")
        if t.trial in failed
        else TrialOutcome(
            trial=t.trial,
            state="SUCCESS",
            metrics=make_metrics(sharpe=sharpe[t.trial], trade_count=3),
            returns=pack_returns(RETURNS * (t.trial + 1)),
        )
        for t in command.trials
    ]
    result = TrialsResult(engine_version="0.1.0", outcomes=outcomes)
    return BacktestSucceeded(
        task_id=command.task_id, user_id=command.user_id, seq=4, result=result, chunk=True
    )


def _failed(command: SubmitBacktest, reason: FailureReason, message: str) -> BacktestFailed:
    failure = Failure(reason=reason, message=message)
    return BacktestFailed(
        task_id=command.task_id, user_id=command.user_id, seq=4, failure=failure, chunk=True
    )


async def test_a_grid_sends_chunks_of_trials_each_once_under_the_chunks_own_task_and_message_id(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)

    chunks = [(c.task_id, c.message_id, [(t.trial, t.params) for t in c.trials]) for c in bus.submitted]
    first, second = chunk_task_id(sweep_id, [0, 1]), chunk_task_id(sweep_id, [2, 3])
    assert chunks == [
        (first, f"{first}-submit", [(0, {"fast": 5, "slow": 20}), (1, {"fast": 5, "slow": 30})]),
        (second, f"{second}-submit", [(2, {"fast": 5, "slow": 40}), (3, {"fast": 10, "slow": 20})]),
    ]
    assert all(c.config == store.sweeps[sweep_id].config for c in bus.submitted)  # the base config
    assert [_trial(store, sweep_id, i).task_id for i in range(6)] == [
        first,
        first,
        second,
        second,
        None,
        None,
    ]
    assert store.sweeps[sweep_id].state is SweepState.RUNNING
    assert store.sweeps[sweep_id].counts.model_dump() == {
        "total": 6, "done": 0, "failed": 0, "skipped": 0, "cancelled": 0, "running": 4
    }  # fmt: skip

    await service.trial_ended(first, _succeeded(bus.submitted[0], {0: 1.5, 1: 0.5}))
    await service.trial_ended(first, _succeeded(bus.submitted[0], {0: 9.0, 1: 9.0}))  # redelivered: ignored

    assert [[t.trial for t in c.trials] for c in bus.submitted[2:]] == [[4, 5]]
    trial_0 = _trial(store, sweep_id, 0)
    assert (trial_0.state, trial_0.score, trial_0.task_id) == (TrialStatus.SUCCESS, 1.5, first)
    assert trial_0.metrics is not None and trial_0.metrics["sharpe"] == 1.5
    assert trial_0.returns is not None and unpack_returns(trial_0.returns).tolist() == RETURNS.tolist()
    assert _trial(store, sweep_id, 1).score == 0.5
    assert store.sweeps[sweep_id].best is not None and store.sweeps[sweep_id].best["id"] == 0


async def test_the_sweep_ends_when_every_trial_has_ended_ranked_by_its_objective(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    store.earlier_sharpes = [0.01, 0.02]
    sweep_id = await _submitted(service, store)
    sharpes = {0: 0.5, 1: 2.0, 2: -1.0, 3: 2.0}
    while bus.submitted:
        command = bus.submitted.pop(0)
        if command.trials[0].trial == 4:  # the last chunk times out as a whole
            await service.trial_ended(command.task_id, _failed(command, FailureReason.TIMEOUT, "over 600 s"))
        else:
            await service.trial_ended(command.task_id, _succeeded(command, sharpes, failed=(2,)))

    record = store.sweeps[sweep_id]
    assert record.state is SweepState.SUCCESS and record.finished_at is not None
    assert record.best is not None and record.best["id"] == 1  # 2.0 twice: the lower id
    assert record.counts.model_dump() == {
        "total": 6, "done": 3, "failed": 3, "skipped": 0, "cancelled": 0, "running": 0
    }  # fmt: skip
    assert _trial(store, sweep_id, 2).reason == "strategy_error: boom"
    assert [_trial(store, sweep_id, i).reason for i in (4, 5)] == ["timeout: over 600 s"] * 2
    assert bus.events[-1].state is SweepState.SUCCESS and bus.events[-1].best_trial == 1
    assert record.overfitting is not None and record.overfitting["history_trials"] == 3 + 2


async def test_params_a_builtin_refuses_are_skipped_without_a_backtest_and_a_refusal_in_the_sandbox_too(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store, space=["fast=10,30", "slow=20"])
    sent = [[(t.trial, t.params) for t in c.trials] for c in bus.submitted]
    command = bus.submitted[0]
    outcome = TrialOutcome(trial=0, state="SKIPPED", reason="slow: too small")
    refused = TrialsResult(engine_version="0.1.0", outcomes=[outcome])
    await service.trial_ended(
        command.task_id, BacktestSucceeded(task_id=command.task_id, user_id="alice", seq=4, result=refused)
    )

    record = store.sweeps[sweep_id]
    assert sent == [[(0, {"fast": 10, "slow": 20})]]
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


async def test_a_chunk_refused_as_a_whole_skips_its_trials_and_one_that_failed_fails_them(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    first, second = bus.submitted
    await service.trial_ended(first.task_id, _failed(first, FailureReason.INVALID_CONFIG, "needs 100 bars"))
    await service.trial_ended(second.task_id, _failed(second, FailureReason.DEAD_LETTER, "gave up"))

    states = [(_trial(store, sweep_id, i).state, _trial(store, sweep_id, i).reason) for i in range(4)]
    assert (
        states
        == [(TrialStatus.SKIPPED, "needs 100 bars")] * 2 + [(TrialStatus.FAILURE, "dead_letter: gave up")] * 2
    )


async def test_a_cancel_ends_planned_trials_at_once_cancels_the_chunks_out_and_finishes_when_they_end(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    await service.cancel(CancelSweep(sweep_id=sweep_id, user_id="alice"))
    cancelling = store.sweeps[sweep_id]
    for command in bus.cancelled:
        await service.trial_ended(
            command.task_id, BacktestCancelled(task_id=command.task_id, user_id="alice", seq=3, chunk=True)
        )

    record = store.sweeps[sweep_id]
    assert sorted(c.task_id for c in bus.cancelled) == sorted(c.task_id for c in bus.submitted)
    assert len(bus.cancelled) == 2  # one cancel a chunk, not one a trial
    assert (cancelling.state, cancelling.finished_at, cancelling.counts.running) == (
        SweepState.CANCELLED,
        None,
        4,
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


async def test_a_restart_resends_the_chunks_marked_submitted_under_the_same_ids_with_the_same_trials(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(service, store)
    before = [c.model_dump(exclude={"occurred_at"}) for c in bus.submitted]
    restarted_bus = FakeSweepBus()
    restarted = SweeperService(
        store,
        restarted_bus,
        lambda: store.sweeps[sweep_id].updated_at,
        trials_in_flight=4,
        chunking=Chunking(max_trials=2),
    )

    assert await restarted.resume() == 1
    assert [c.model_dump(exclude={"occurred_at"}) for c in restarted_bus.submitted] == before
    assert store.sweeps[sweep_id].counts.running == 4


async def test_a_tpe_sweep_asks_a_chunk_of_trials_as_earlier_ones_end_and_stops_at_its_trial_count(
    service: SweeperService, store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    sweep_id = await _submitted(
        service, store, space=["fast=2:10:1", "slow=20:60:5"], method="tpe", trials=5, seed=3
    )
    sizes = []
    while bus.submitted:
        command = bus.submitted.pop(0)
        sizes.append(len(command.trials))
        sharpes = {t.trial: float(t.params["slow"]) for t in command.trials}
        await service.trial_ended(command.task_id, _succeeded(command, sharpes))

    record = store.sweeps[sweep_id]
    assert sorted(i for s, i in store.trial_rows if s == sweep_id) == [0, 1, 2, 3, 4]
    assert sizes == [2, 2, 1]
    assert record.state is SweepState.SUCCESS and record.counts.done == 5


async def test_a_trial_an_earlier_sweep_or_a_single_backtest_ran_on_the_same_data_is_reused_not_run(
    store: FakeSweepStore, bus: FakeSweepBus
) -> None:
    prints = FakeFingerprints()

    def sweeper(engine: str = "e1") -> SweeperService:
        return SweeperService(store, bus, lambda: T0, 100, None, Chunking(max_trials=2), prints, engine)

    first = await _submitted(sweeper(), store)  # fast 5,10 x slow 20,30,40
    while bus.submitted:
        command = bus.submitted.pop(0)
        sharpes = {t.trial: 1.0 + t.trial for t in command.trials}
        await service_end(sweeper(), command, _succeeded(command, sharpes))
    base = store.sweeps[first].config
    single = trial_cache_key(base, {"fast": 20, "slow": 50}, await config_fingerprints(base, prints), "e1")
    store.single_backtests[single] = Reused(make_metrics(sharpe=3.0).model_dump(mode="json"), None)

    # fast 5,10,20 x slow 20,30,40,50: 6 ran in the first sweep, 1 as a single backtest, 20/20 is
    # refused by sma_cross: 4 run.
    grid = ["fast=5,10,20", "slow=20,30,40,50"]
    second = await _submitted(sweeper(), store, sweep_id="6" * 32, space=grid)

    trials = {
        (t.params["fast"], t.params["slow"]): t for (s, _), t in store.trial_rows.items() if s == second
    }
    sent = sorted((t.params["fast"], t.params["slow"]) for c in bus.submitted for t in c.trials)
    assert sent == [(5, 50), (10, 50), (20, 30), (20, 40)]
    assert sorted(k for k, t in trials.items() if t.cached and t.state is TrialStatus.SUCCESS) == [
        (5, 20), (5, 30), (5, 40), (10, 20), (10, 30), (10, 40), (20, 50)
    ]  # fmt: skip
    assert trials[(5, 30)].metrics == _trial(store, first, 1).metrics
    assert trials[(5, 30)].returns == _trial(store, first, 1).returns
    assert (trials[(20, 50)].score, trials[(20, 50)].cache_key) == (3.0, single)
    assert all(t.cache_key is not None and not t.cached for k, t in trials.items() if k in sent)

    bus.submitted.clear()
    await _submitted(sweeper("e2"), store, sweep_id="7" * 32)  # another engine: nothing is reused
    assert sorted(t.trial for c in bus.submitted for t in c.trials) == list(range(6))
    bus.submitted.clear()
    prints.value = "fp-2"  # the data was re-ingested: nothing of before is reused
    await _submitted(sweeper(), store, sweep_id="8" * 32)
    assert sorted(t.trial for c in bus.submitted for t in c.trials) == list(range(6))


async def service_end(service: SweeperService, command: SubmitBacktest, event: BacktestSucceeded) -> None:
    await service.trial_ended(command.task_id, event)
