"""WS /walkforward/stream/{walkforward_id}: a walk-forward's progress, fold by fold, until it finishes.

The frames follow the store as the sweep stream's do (what GET /walkforward/{id} answers, read every
`sweep_stream_poll_s`):
- `{"type": "status", "walkforward": <GET /walkforward/{id}>, "trials": {total, done, failed, skipped,
  cancelled, running}}` (the trials of every fold's sweep): first, then whenever the walk-forward or its
  trials changed; the last frame is always the status with `finished_at` set, then the close 1000;
- `{"type": "fold_trained", "fold": <fold>}` once per fold whose sweep ended with chosen params, and
  `{"type": "fold_tested", "fold": <fold>}` once per fold whose test run ended DONE, where `<fold>` is
  the fold as `fold_outcome` gives it (the shape of the result's folds plus `fold`, its number).
A fold that ends with no test run (NO_TRIAL, FAILED, CANCELLED) shows in the status frames only.
"""

from __future__ import annotations

from datetime import datetime

from backtest_core.contracts import SweepCounts
from backtest_research.walkforward_records import FoldState, WalkForwardRecord
from fastapi import APIRouter, WebSocket

from backtest_gateway.auth import Principal
from backtest_gateway.ports import SweepStore
from backtest_gateway.routers.store_stream import Frame, is_stored_id, poll_store, stream_owned
from backtest_gateway.routers.walkforward import (
    PREFIX,
    WalkForwardNotFound,
    get_walkforwards,
    visible_walkforward,
)
from backtest_gateway.schemas_walkforward import WalkForwardStatus, fold_outcome

router = APIRouter(prefix=PREFIX, tags=["walkforward"])
TrialCounts = dict[str, int]


@router.websocket("/stream/{walkforward_id}")
async def stream_walkforward(websocket: WebSocket, walkforward_id: str, token: str | None = None) -> None:
    """Send the walk-forward's status, then each fold's chosen params and out-of-sample metrics as they
    come, and the final status; close after it finished.

    Authenticated and limited as WS /sweep/stream (one read token, one of the user's stream slots). A
    missing or foreign walk-forward: one `{"error": {...}}` frame (`walkforward_not_found`), close 4404.
    """
    walkforwards = get_walkforwards(websocket)
    sweeps: SweepStore = websocket.app.state.sweeps

    async def find(principal: Principal) -> WalkForwardRecord:
        if not is_stored_id(walkforward_id):
            raise WalkForwardNotFound(walkforward_id)
        return await visible_walkforward(walkforwards, principal, walkforward_id)

    async def reread(record: WalkForwardRecord) -> WalkForwardRecord | None:
        return await walkforwards.get(record.walkforward_id)

    async def follow(websocket: WebSocket, record: WalkForwardRecord) -> None:
        await poll_store(websocket, record, reread, WalkForwardFrames(sweeps).new, _finished)

    await stream_owned(websocket, token, find, follow)


def _finished(record: WalkForwardRecord) -> bool:
    return record.finished_at is not None


class WalkForwardFrames:
    """The frames of a walk-forward not sent yet: the status first, each fold event once, the status
    again when it changed, and the final status last."""

    def __init__(self, sweeps: SweepStore) -> None:
        self._sweeps = sweeps
        self._shown: tuple[datetime, TrialCounts] | None = None  # the status last sent
        self._sent: set[tuple[str, int]] = set()  # (frame type, fold number)
        self._final_counts: dict[str, SweepCounts] = {}  # of the folds' sweeps that have finished

    async def new(self, current: WalkForwardRecord) -> list[Frame]:
        """The frames that `current` (and its folds' sweeps, read after it) add to those already sent."""
        trials = await self.trials(current)
        status: Frame = {
            "type": "status",
            "walkforward": WalkForwardStatus.from_record(current).model_dump(mode="json"),
            "trials": trials,
        }
        frames: list[Frame] = []
        if self._shown is None:
            frames.append(status)  # the snapshot
        frames += self._fold_frames(current)
        changed = self._shown is not None and (current.updated_at, trials) != self._shown
        ends_here = current.finished_at is not None and (not frames or frames[-1] is not status)
        if changed or ends_here:
            frames.append(status)
        self._shown = (current.updated_at, trials)
        return frames

    def _fold_frames(self, current: WalkForwardRecord) -> list[Frame]:
        frames: list[Frame] = []
        for fold in current.folds:
            events = (
                ("fold_trained", fold.params is not None),
                ("fold_tested", fold.state is FoldState.DONE),
            )
            for kind, happened in events:
                if happened and (kind, fold.number) not in self._sent:
                    self._sent.add((kind, fold.number))
                    frames.append({"type": kind, "fold": fold_outcome(fold)})
        return frames

    async def trials(self, current: WalkForwardRecord) -> TrialCounts:
        """The trials of every fold's sweep by outcome, summed (a sweep not stored yet: all to come)."""
        summed = dict.fromkeys(SweepCounts.model_fields, 0)
        for fold in current.folds:
            counts = self._final_counts.get(fold.sweep_id)
            if counts is None:
                sweep = await self._sweeps.get(fold.sweep_id)
                counts = SweepCounts(total=current.search.size()) if sweep is None else sweep.counts
                if sweep is not None and sweep.finished_at is not None:
                    self._final_counts[fold.sweep_id] = counts
            for name, value in counts.model_dump().items():
                summed[name] += value
        return summed
