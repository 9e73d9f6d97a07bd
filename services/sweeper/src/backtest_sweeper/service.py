"""SweeperService: the one owner of sweep state. Each handler stores first, then publishes, then the
message is acked; a crash anywhere redelivers the message and every step is idempotent:

- a trial's task id and its SubmitBacktest's message id derive from the sweep and the trial, so a trial
  sent twice is one task (the scheduler ignores a task id it has);
- a trial is marked SUBMITTED before its command goes, and `resume` sends every SUBMITTED trial again at
  start (what a crash between the mark and the publish left);
- a trial's end is stored only while the trial is open, and the counts are recounted from the trials.

At most `trials_in_flight` trials of a sweep are out at once; as one ends the next is sent. A TPE sweep
asks Optuna for each trial when it is sent, from a study rebuilt from the trials ended so far (so a
restart loses nothing: the study is the stored trials).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backtest_core.contracts import (
    CancelSweep,
    SubmitSweep,
    SweepEvent,
    SweepState,
)
from backtest_research.overfitting import metrics_per_bar_sharpe
from backtest_research.sweep import history_deflated_sharpe
from backtest_research.sweep_records import ENDED_TRIALS, OPEN_TRIALS, SweepRecord, TrialStatus
from backtest_research.tpe import ask_tpe

from backtest_sweeper.locks import LocalLocks, OwnerLocks
from backtest_sweeper.plan import (
    TrialEnd,
    best_summary,
    cancel_command,
    ended_trial,
    initial_trials,
    new_trial,
    research_trial,
    submit_command,
    summary,
    sweep_counts,
)
from backtest_sweeper.ports import SweepBus, SweepStore

log = logging.getLogger(__name__)


class SweeperService:
    """Plans sweeps, sends their trials, records their ends and ranks them."""

    def __init__(
        self,
        store: SweepStore,
        bus: SweepBus,
        clock: Callable[[], datetime],
        trials_in_flight: int,
        locks: OwnerLocks | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._in_flight = trials_in_flight
        self._locks: OwnerLocks = locks or LocalLocks()

    async def submit(self, command: SubmitSweep) -> None:
        """Plan a PENDING sweep's trials and send the first ones."""
        async with self._locks.hold(f"sweep.{command.sweep_id}"):
            record = await self._store.get(command.sweep_id)
            if record is None or record.user_id != command.user_id:
                log.warning("sweep %s of user %s is not stored; ignored", command.sweep_id, command.user_id)
                return
            if record.state is SweepState.PENDING:
                await self._store.add_trials(initial_trials(record, self._clock()))
                await self._store.set_state(
                    record.sweep_id, SweepState.RUNNING, {"updated_at": self._clock()}
                )
                record = record.model_copy(update={"state": SweepState.RUNNING})
            await self._advance(record, None)

    async def cancel(self, command: CancelSweep) -> None:
        """Stop sending trials and cancel those out; the sweep ends CANCELLED when they have ended."""
        async with self._locks.hold(f"sweep.{command.sweep_id}"):
            record = await self._store.get(command.sweep_id)
            if record is None or record.user_id != command.user_id:
                return
            now = self._clock()
            if not await self._store.set_state(record.sweep_id, SweepState.CANCELLED, {"updated_at": now}):
                return  # it had ended
            await self._store.cancel_planned(record.sweep_id, now)
            for trial in await self._store.trials(record.sweep_id, (TrialStatus.SUBMITTED,)):
                await self._bus.cancel(cancel_command(trial))
            await self._advance(record.model_copy(update={"state": SweepState.CANCELLED}), None)

    async def trial_ended(self, task_id: str, event: TrialEnd) -> None:
        """Record the end of a trial's task and send the next trial (or end the sweep)."""
        trial = await self._store.trial_of_task(task_id)
        if trial is None or trial.state not in OPEN_TRIALS:
            return
        async with self._locks.hold(f"sweep.{trial.sweep_id}"):
            record = await self._store.get(trial.sweep_id)
            if record is None:
                return
            ended = ended_trial(trial, event, record.search.ranking(), self._clock())
            if await self._store.save_trial(ended):
                await self._advance(record, ended.id)

    async def is_trial(self, task_id: str) -> bool:
        """Whether an open trial runs as this task (so its event is worth reading whole)."""
        trial = await self._store.trial_of_task(task_id)
        return trial is not None and trial.state in OPEN_TRIALS

    async def resume(self) -> int:
        """At start: send again every SUBMITTED trial of every open sweep and advance each; the count."""
        sweep_ids = await self._store.open_sweeps()
        for sweep_id in sweep_ids:
            async with self._locks.hold(f"sweep.{sweep_id}"):
                record = await self._store.get(sweep_id)
                if record is None or record.state is SweepState.PENDING:
                    continue  # its SubmitSweep is still in the stream
                for trial in await self._store.trials(sweep_id, (TrialStatus.SUBMITTED,)):
                    await self._bus.submit(submit_command(record, trial))
                await self._advance(record, None)
        return len(sweep_ids)

    async def _advance(self, record: SweepRecord, ended: int | None) -> None:
        """Send trials up to the in-flight limit, recount, and end the sweep when no trial is open."""
        by_state = await self._store.counts(record.sweep_id)
        if record.state is SweepState.RUNNING:
            free = self._in_flight - by_state.get(TrialStatus.SUBMITTED, 0)
            if free > 0 and record.search.method == "tpe":
                await self._ask_tpe(record, by_state, free)
            for trial in (
                await self._store.trials(record.sweep_id, (TrialStatus.PLANNED,), free) if free > 0 else []
            ):
                submitted = trial.model_copy(
                    update={"state": TrialStatus.SUBMITTED, "updated_at": self._clock()}
                )
                await self._store.save_trial(submitted)
                await self._bus.submit(submit_command(record, submitted))
            by_state = await self._store.counts(record.sweep_id)
        total = max(record.search.size(), sum(by_state.values()))
        counts = sweep_counts(by_state, total)
        best = best_summary(await self._store.best(record.sweep_id))
        now = self._clock()
        fields: dict[str, object] = {
            "counts": counts.model_dump(mode="json"),
            "best": best,
            "updated_at": now,
        }
        state = record.state
        if not any(by_state.get(s, 0) for s in OPEN_TRIALS) and (
            state is SweepState.CANCELLED or sum(by_state.values()) >= record.search.size()
        ):
            state = await self._finish(record, fields, now)
        else:
            await self._store.update(record.sweep_id, fields)
        await self._bus.publish(
            SweepEvent(
                message_id=f"{record.sweep_id}-{state.value}-{ended if ended is not None else 'state'}",
                sweep_id=record.sweep_id,
                user_id=record.user_id,
                state=state,
                counts=counts,
                trial=ended,
                best_trial=best["id"] if best else None,
            )
        )

    async def _finish(self, record: SweepRecord, fields: dict[str, object], now: datetime) -> SweepState:
        """Rank the ended trials, compute the overfitting statistics and end the sweep."""
        trials = await self._store.trials(record.sweep_id)
        ranked = summary(record, trials)
        state: SweepState = record.state if record.state is SweepState.CANCELLED else SweepState.SUCCESS
        failure = None
        if state is SweepState.SUCCESS and ranked.counts()["done"] == 0:
            state = SweepState.FAILURE
            reasons = [t.reason for t in ranked.trials if t.reason]
            failure = f"no trial succeeded; the first said: {reasons[0]}" if reasons else "no trial succeeded"
        own = [metrics_per_bar_sharpe(t.metrics) for t in trials if t.state is TrialStatus.SUCCESS]
        others = await self._store.other_sharpes(record.user_id, record.config, {t.task_id for t in trials})
        history = history_deflated_sharpe(ranked.best, [s for s in own if s is not None] + others)
        overfitting = ranked.overfitting | history
        fields |= {"overfitting": overfitting, "failure": failure, "finished_at": now}
        if record.state is SweepState.CANCELLED:
            await self._store.update(record.sweep_id, fields)
        else:
            await self._store.set_state(record.sweep_id, state, fields)
        return state

    async def _ask_tpe(self, record: SweepRecord, by_state: dict[TrialStatus, int], free: int) -> None:
        """Ask Optuna for the next trials of a TPE sweep, up to `free` and the sweep's trial count."""
        have = sum(by_state.values())
        wanted = min(free - by_state.get(TrialStatus.PLANNED, 0), record.search.size() - have)
        if wanted <= 0:
            return
        ended = [research_trial(t) for t in await self._store.trials(record.sweep_id, ENDED_TRIALS)]
        asked = ask_tpe(
            record.search.param_space(), record.search.seed, ended, record.search.ranking(), have, wanted
        )
        now = self._clock()
        await self._store.add_trials(
            [new_trial(record, have + i, params, now) for i, params in enumerate(asked)]
        )
