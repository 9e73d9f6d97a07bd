"""WS /sweep/stream/{sweep_id}: a sweep's progress and each trial as it ends, until the sweep finishes.

The frames follow the store (what GET /sweep/{id} and /trials answer), read every `sweep_stream_poll_s`:
`{"type": "status", "sweep": <GET /sweep/{id}>}` whenever the sweep changed, and `{"type": "trial",
"trial": <a row of /trials>}` once for every trial that ended (cancelled ones included), in the order they
ended. The first frames are the status and every trial ended so far; the last is the status with
`finished_at` set, then the server closes with 1000.
"""

from __future__ import annotations

from datetime import datetime

from backtest_research.sweep_records import SweepRecord
from fastapi import APIRouter, WebSocket

from backtest_gateway.auth import Principal
from backtest_gateway.errors import SweepNotFound
from backtest_gateway.ports import SweepStore
from backtest_gateway.routers.store_stream import Frame, is_stored_id, poll_store, stream_owned
from backtest_gateway.routers.sweeps import PREFIX, visible_sweep
from backtest_gateway.schemas_sweep import SweepStatus

router = APIRouter(prefix=PREFIX, tags=["sweeps"])


@router.websocket("/stream/{sweep_id}")
async def stream_sweep(websocket: WebSocket, sweep_id: str, token: str | None = None) -> None:
    """Send the sweep's status on every change and each trial as it ends; close after it finished.

    Authenticate as for WS /backtest/stream (header, `bearer, <jwt>` subprotocols or `?token=`); a stream
    spends one read token and holds one of the user's `streams_per_user_max` slots. A missing or foreign
    sweep: one `{"error": {...}}` frame, then close 4404.
    """
    sweeps: SweepStore = websocket.app.state.sweeps

    async def find(principal: Principal) -> SweepRecord:
        if not is_stored_id(sweep_id):
            raise SweepNotFound(sweep_id)
        return await visible_sweep(sweeps, principal, sweep_id)

    async def reread(record: SweepRecord) -> SweepRecord | None:
        return await sweeps.get(record.sweep_id)

    async def follow(websocket: WebSocket, record: SweepRecord) -> None:
        await poll_store(websocket, record, reread, SweepFrames(sweeps).new, _finished)

    await stream_owned(websocket, token, find, follow)


def _finished(record: SweepRecord) -> bool:
    return record.finished_at is not None


class SweepFrames:
    """The frames of a sweep not sent yet: each trial ended since the last read, then the status if the
    sweep changed (always with the final one)."""

    def __init__(self, sweeps: SweepStore) -> None:
        self._sweeps = sweeps
        self._shown: datetime | None = None  # the sweep's updated_at last sent
        self._since: datetime | None = None  # trials changed at or after this are read again
        self._sent: set[int] = set()

    async def new(self, current: SweepRecord) -> list[Frame]:
        """The frames that `current` (and its trials, read after it) add to those already sent."""
        frames: list[Frame] = []
        for trial in await self._sweeps.ended_since(current.sweep_id, self._since):
            self._since = trial.updated_at
            if trial.id not in self._sent:
                self._sent.add(trial.id)
                frames.append({"type": "trial", "trial": trial.as_json()})
        if current.updated_at != self._shown or current.finished_at is not None:
            status = SweepStatus.from_record(current).model_dump(mode="json")
            frames.append({"type": "status", "sweep": status})
            self._shown = current.updated_at
        return frames
