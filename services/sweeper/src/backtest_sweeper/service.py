"""SweeperService: the one owner of sweep state. Each handler stores first, then publishes, then the
message is acked; a crash anywhere redelivers the message and every step is idempotent:

- trials run in chunks (`plan.chunk_size`: about `Chunking.bar_trials` of engine work each), one task
  per chunk whose id and SubmitBacktest message id derive from the sweep and the chunk's trials, so a
  chunk sent twice is one task (the scheduler ignores a task id it has);
- a chunk's trials are marked SUBMITTED with its task id before its command goes, and `resume` sends
  every SUBMITTED chunk again at start (what a crash between the mark and the publish left);
- a trial's end is stored only while the trial is open, and the counts are recounted from the trials.

At most `trials_in_flight` trials of a sweep are out at once (one chunk at least); as a chunk ends the
next is sent. A TPE sweep asks Optuna for a chunk's trials when it is sent, from a study rebuilt from
the trials ended so far (so a restart loses nothing: the study is the stored trials).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backtest_core.build import engine_build_id
from backtest_core.contracts import (
    CancelSweep,
    SubmitSweep,
    SweepEvent,
    SweepState,
)
from backtest_core.contracts.cache_key import DataFingerprints, config_fingerprints
from backtest_core.errors import DataError
from backtest_research.overfitting import metrics_per_bar_sharpe
from backtest_research.sweep import history_deflated_sharpe
from backtest_research.sweep_records import (
    ENDED_TRIALS,
    OPEN_TRIALS,
    SweepRecord,
    TrialRecord,
    TrialStatus,
    chunk_task_id,
)
from backtest_research.tpe import ask_tpe

from backtest_sweeper.locks import LocalLocks, OwnerLocks
from backtest_sweeper.plan import (
    Chunking,
    TrialEnd,
    best_summary,
    cancel_command,
    chunk_command,
    chunk_size,
    chunks_to_send,
    ended_trials,
    initial_trials,
    moved,
    new_trial,
    research_trial,
    reused_trial,
    summary,
    sweep_counts,
    trial_cache_key,
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
        chunking: Chunking | None = None,
        fingerprints: DataFingerprints | None = None,
        engine: str | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._in_flight = trials_in_flight
        self._chunking = chunking or Chunking()
        self._fingerprints = fingerprints  # None: no trial is reused from an earlier run
        self._engine = engine if engine is not None else engine_build_id()
        self._locks: OwnerLocks = locks or LocalLocks()

    async def submit(self, command: SubmitSweep) -> None:
        """Plan a PENDING sweep's trials and send the first ones."""
        async with self._locks.hold(f"sweep.{command.sweep_id}"):
            record = await self._store.get(command.sweep_id)
            if record is None or record.user_id != command.user_id:
                log.warning("sweep %s of user %s is not stored; ignored", command.sweep_id, command.user_id)
                return
            if record.state is SweepState.PENDING:
                await self._store.add_trials(await self._keyed(record, initial_trials(record, self._clock())))
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
            for task_id in sorted(
                _chunks(await self._store.trials(record.sweep_id, (TrialStatus.SUBMITTED,)))
            ):
                await self._bus.cancel(cancel_command(task_id, record.user_id))
            await self._advance(record.model_copy(update={"state": SweepState.CANCELLED}), None)

    async def trial_ended(self, task_id: str, event: TrialEnd) -> None:
        """Record the end of a chunk's task in its trials and send the next chunk (or end the sweep)."""
        trials = [t for t in await self._store.trials_of_task(task_id) if t.state in OPEN_TRIALS]
        if not trials:
            return
        async with self._locks.hold(f"sweep.{trials[0].sweep_id}"):
            record = await self._store.get(trials[0].sweep_id)
            if record is None:
                return
            ended = ended_trials(trials, event, record.search.ranking(), self._clock())
            if await self._store.save_trials(ended):
                await self._advance(record, ended[0].id)

    async def is_trial(self, task_id: str) -> bool:
        """Whether open trials run as this task (so its event is worth reading whole)."""
        return any(t.state in OPEN_TRIALS for t in await self._store.trials_of_task(task_id))

    async def resume(self) -> int:
        """At start: send again every SUBMITTED trial of every open sweep and advance each; the count."""
        sweep_ids = await self._store.open_sweeps()
        for sweep_id in sweep_ids:
            async with self._locks.hold(f"sweep.{sweep_id}"):
                record = await self._store.get(sweep_id)
                if record is None or record.state is SweepState.PENDING:
                    continue  # its SubmitSweep is still in the stream
                chunks = _chunks(await self._store.trials(sweep_id, (TrialStatus.SUBMITTED,)))
                for task_id, trials in chunks.items():
                    await self._bus.submit(chunk_command(record, task_id, trials))
                await self._advance(record, None)
        return len(sweep_ids)

    async def _advance(self, record: SweepRecord, ended: int | None) -> None:
        """Send chunks up to the in-flight limit, recount, and end the sweep when no trial is open."""
        by_state = await self._store.counts(record.sweep_id)
        if record.state is SweepState.RUNNING:
            sent = await self._send_chunks(record, by_state)
            if record.search.method == "tpe":  # it may have asked for new trials: count again
                by_state = await self._store.counts(record.sweep_id)
            elif sent:
                by_state = moved(by_state, sent, TrialStatus.PLANNED, TrialStatus.SUBMITTED)
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
        others = await self._store.other_sharpes(record.user_id, record.config, record.sweep_id)
        history = history_deflated_sharpe(ranked.best, [s for s in own if s is not None] + others)
        overfitting = ranked.overfitting | history
        fields |= {"overfitting": overfitting, "failure": failure, "finished_at": now}
        if record.state is SweepState.CANCELLED:
            await self._store.update(record.sweep_id, fields)
        else:
            await self._store.set_state(record.sweep_id, state, fields)
        return state

    async def _send_chunks(self, record: SweepRecord, by_state: dict[TrialStatus, int]) -> int:
        """Mark the chunks that fit in the in-flight limit SUBMITTED, then send each as one task; the
        number of trials sent."""
        out = by_state.get(TrialStatus.SUBMITTED, 0)
        room = self._in_flight - out
        size = chunk_size(record, self._chunking)
        if record.search.method == "tpe" and room > 0:
            await self._ask_tpe(record, by_state, min(room, size))
        limit = (max(room, 0) // size + 1) * size + 1  # one more than the chunks that could fit
        planned = await self._store.trials(record.sweep_id, (TrialStatus.PLANNED,), limit)
        chunks = {
            chunk_task_id(record.sweep_id, [t.id for t in chunk]): chunk
            for chunk in chunks_to_send(planned, size, room, out == 0, all_planned=len(planned) < limit)
        }
        # SUBMITTED before sent (in one write): a crash in between resends them at the restart
        ids = {task_id: [t.id for t in chunk] for task_id, chunk in chunks.items()}
        await self._store.mark_submitted(record.sweep_id, ids, self._clock())
        for task_id, chunk in chunks.items():
            await self._bus.submit(chunk_command(record, task_id, chunk))
        return sum(len(chunk) for chunk in chunks.values())

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
        trials = [new_trial(record, have + i, params, now) for i, params in enumerate(asked)]
        await self._store.add_trials(await self._keyed(record, trials))

    async def _keyed(self, record: SweepRecord, trials: list[TrialRecord]) -> list[TrialRecord]:
        """The new trials, each PLANNED one keyed as a single backtest of its config would be (data
        fingerprints and engine included), those an earlier run answers SUCCESS and `cached`."""
        if self._fingerprints is None or not any(t.state is TrialStatus.PLANNED for t in trials):
            return trials
        try:
            prints = await config_fingerprints(record.config, self._fingerprints)
        except DataError:
            return trials  # the chunks' tasks end FAILURE naming the missing data
        keys = {
            t.id: trial_cache_key(record.config, t.params, prints, self._engine)
            for t in trials
            if t.state is TrialStatus.PLANNED
        }
        found = await self._store.reusable(sorted(set(keys.values())))
        objective, now = record.search.ranking(), self._clock()
        return [
            reused_trial(t, keys[t.id], found.get(keys[t.id]), objective, now) if t.id in keys else t
            for t in trials
        ]


def _chunks(trials: list[TrialRecord]) -> dict[str, list[TrialRecord]]:
    """SUBMITTED trials by the chunk's task that runs them, each chunk's trials in id order."""
    chunks: dict[str, list[TrialRecord]] = {}
    for trial in sorted(trials, key=lambda t: t.id):
        if trial.task_id is not None:
            chunks.setdefault(trial.task_id, []).append(trial)
    return chunks
