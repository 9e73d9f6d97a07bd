"""WalkForwardService: the one owner of walk-forward state. Like the sweeps, each step stores first, then
publishes, then the message is acked, and every step is idempotent:

- a fold's sweep and test task have ids derived from the walk-forward and the fold, and their commands
  message ids of their own, so a resend is one sweep or one task;
- a fold is marked TESTING (with the equity it starts from) before its test run goes, and `resume`
  sends every TESTING fold's run and every PENDING fold sweep's command again at start;
- the decisions (`walkforward_plan.advance`) read only the stored walk-forward and its folds' sweeps;
- each stored change publishes its events (`walkforward_events`) after the store, on
  `walkforward.event.<id>`, each milestone under one message id (as the sweeps' events, a crash between
  the store and the publish loses that event; the store is always right).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backtest_core.contracts import (
    TERMINAL_SWEEP_STATES,
    CancelBacktest,
    CancelSweep,
    CancelWalkForward,
    SubmitSweep,
    SubmitWalkForward,
    SweepState,
)
from backtest_research.walkforward_records import FoldState, WalkForwardRecord

from backtest_sweeper.locks import LocalLocks, OwnerLocks
from backtest_sweeper.ports import SweepBus, SweepStore, WalkForwardStore
from backtest_sweeper.walkforward_events import walkforward_events
from backtest_sweeper.walkforward_plan import TestEnd, advance, fold_sweeps, test_command, tested_fold

log = logging.getLogger(__name__)


class WalkForwardService:
    """Starts a walk-forward's fold sweeps, sends each fold's test run in turn and stitches the result."""

    def __init__(
        self,
        store: WalkForwardStore,
        sweeps: SweepStore,
        bus: SweepBus,
        clock: Callable[[], datetime],
        locks: OwnerLocks | None = None,
    ) -> None:
        self._store = store
        self._sweeps = sweeps
        self._bus = bus
        self._clock = clock
        self._locks: OwnerLocks = locks or LocalLocks()

    async def submit(self, command: SubmitWalkForward) -> None:
        """Store the folds' sweeps of a PENDING walk-forward, mark it RUNNING, send the sweeps' commands."""
        async with self._locks.hold(f"walkforward.{command.walkforward_id}"):
            record = await self._store.get(command.walkforward_id)
            if record is None or record.user_id != command.user_id:
                log.warning(
                    "walk-forward %s of %s is not stored; ignored", command.walkforward_id, command.user_id
                )
                return
            if record.state is SweepState.PENDING:
                await self._sweeps.add_sweeps(fold_sweeps(record, self._clock()))
                running = record.model_copy(update={"state": SweepState.RUNNING, "updated_at": self._clock()})
                await self._save(record, running)
                record = running
            await self._send_sweeps(record)
            await self._advance(record)

    async def cancel(self, command: CancelWalkForward) -> None:
        """Cancel the folds' open sweeps and the test run out; the walk-forward ends CANCELLED."""
        async with self._locks.hold(f"walkforward.{command.walkforward_id}"):
            record = await self._store.get(command.walkforward_id)
            if record is None or record.user_id != command.user_id or record.finished_at is not None:
                return
            stored = record
            record = record.model_copy(update={"state": SweepState.CANCELLED, "updated_at": self._clock()})
            await self._save(stored, record)
            for fold in record.folds:
                sweep = await self._sweeps.get(fold.sweep_id)
                if sweep is not None and sweep.state not in TERMINAL_SWEEP_STATES:
                    await self._bus.cancel_sweep(
                        CancelSweep(
                            message_id=f"{fold.sweep_id}-cancel",
                            sweep_id=fold.sweep_id,
                            user_id=record.user_id,
                        )
                    )
                if fold.state is FoldState.TESTING:
                    await self._bus.cancel(
                        CancelBacktest(
                            message_id=f"{fold.test_task_id}-cancel",
                            task_id=fold.test_task_id,
                            user_id=record.user_id,
                        )
                    )
            await self._advance(record)

    async def sweep_ended(self, sweep_id: str) -> None:
        """A sweep ended: if it is a fold's, fold it in and send the next test run (or end)."""
        walkforward_id = await self._store.of_sweep(sweep_id)
        if walkforward_id is None:
            return
        async with self._locks.hold(f"walkforward.{walkforward_id}"):
            record = await self._store.get(walkforward_id)
            if record is not None and record.finished_at is None:
                await self._advance(record)

    async def is_test_task(self, task_id: str) -> bool:
        """Whether a fold's test run that has not ended runs as this task."""
        return await self._store.of_test_task(task_id) is not None

    async def test_ended(self, task_id: str, event: TestEnd) -> None:
        """Record the end of a fold's test run and send the next (or end the walk-forward)."""
        walkforward_id = await self._store.of_test_task(task_id)
        if walkforward_id is None:
            return
        async with self._locks.hold(f"walkforward.{walkforward_id}"):
            record = await self._store.get(walkforward_id)
            if record is None or record.finished_at is not None:
                return
            folds = [
                tested_fold(f, event, record.config.interval)
                if f.test_task_id == task_id and f.state is FoldState.TESTING
                else f
                for f in record.folds
            ]
            await self._advance(record.model_copy(update={"folds": folds}), stored=record)

    async def resume(self) -> int:
        """At start: send again the commands a crash may have left unsent, and advance each; the count."""
        ids = await self._store.open_walkforwards()
        for walkforward_id in ids:
            async with self._locks.hold(f"walkforward.{walkforward_id}"):
                record = await self._store.get(walkforward_id)
                if record is None or record.state is SweepState.PENDING:
                    continue  # its SubmitWalkForward is still in the stream
                await self._send_sweeps(record)
                for fold in record.folds:
                    if fold.state is FoldState.TESTING:
                        await self._bus.submit(test_command(record, fold))
                await self._advance(record)
        return len(ids)

    async def _send_sweeps(self, record: WalkForwardRecord) -> None:
        """Send the SubmitSweep of every fold sweep still PENDING (the sweeper plans it on receipt)."""
        if record.state is not SweepState.RUNNING:
            return
        for fold in record.folds:
            sweep = await self._sweeps.get(fold.sweep_id)
            if sweep is not None and sweep.state is SweepState.PENDING:
                await self._bus.submit_sweep(
                    SubmitSweep(
                        message_id=f"{fold.sweep_id}-submit", sweep_id=fold.sweep_id, user_id=record.user_id
                    )
                )

    async def _advance(self, record: WalkForwardRecord, stored: WalkForwardRecord | None = None) -> None:
        """Decide from the stored folds' sweeps, store the outcome (`record` changed from `stored`, by
        default itself), then send the next test run."""
        sweeps = {fold.sweep_id: await self._sweeps.get(fold.sweep_id) for fold in record.folds}
        plan = advance(record, sweeps, self._clock())
        await self._save(stored or record, plan.record)
        for command in plan.submit:
            await self._bus.submit(command)
        if plan.finished:
            log.info("walk-forward %s ended %s", record.walkforward_id, plan.record.state.value)

    async def _save(self, stored: WalkForwardRecord, record: WalkForwardRecord) -> None:
        """Store `record` (the change of `stored`), then publish its events (none if it had finished)."""
        if await self._store.save(record):
            for event in walkforward_events(stored, record, self._clock()):
                await self._bus.publish_walkforward(event)
